package wasm

import (
	"sync"
	"sync/atomic"

	"github.com/waygate/waygate/filters"
)

// shared is what the host keeps for one vm_id: the key-value store,
// the queues and the metrics that every instance of every plugin with
// that vm_id sees. It lives in a process-wide table, as in Envoy, where
// shared data outlives VM restarts and config pushes: a plugin that is
// replaced finds what its predecessor stored.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#shared-key-value-store
type shared struct {
	vmID string

	dataMu sync.Mutex
	data   map[string]*sharedValue

	queuesMu sync.Mutex
	queues   map[string]*queue // by name

	metricsMu sync.RWMutex
	metrics   []*metric
	byName    map[string]uint32
}

type sharedValue struct {
	b   []byte
	cas uint32
}

var (
	sharedByVMID sync.Map // vm_id -> *shared
	// casCounter makes CAS values unique process-wide, so a value
	// deleted and set again never repeats an old CAS.
	casCounter atomic.Uint32
	// queuesByID resolves queue ids, which are unique process-wide.
	queuesByID  sync.Map // uint32 -> *queue
	nextQueueID atomic.Uint32
)

func sharedFor(vmID string) *shared {
	if s, ok := sharedByVMID.Load(vmID); ok {
		return s.(*shared)
	}
	s, _ := sharedByVMID.LoadOrStore(vmID, &shared{
		vmID:   vmID,
		data:   map[string]*sharedValue{},
		queues: map[string]*queue{},
		byName: map[string]uint32{},
	})
	return s.(*shared)
}

// get returns a copy of key's value and its CAS.
func (s *shared) get(key string) ([]byte, uint32, bool) {
	s.dataMu.Lock()
	defer s.dataMu.Unlock()
	v := s.data[key]
	if v == nil {
		return nil, 0, false
	}
	return v.b, v.cas, true
}

// set stores value under key. A non-zero cas must equal the stored
// value's CAS: proxy_set_shared_data's compare-and-swap.
func (s *shared) set(key string, value []byte, cas uint32) status {
	s.dataMu.Lock()
	defer s.dataMu.Unlock()
	v := s.data[key]
	if cas != 0 && (v == nil || v.cas != cas) {
		return statusCASMismatch
	}
	next := casCounter.Add(1)
	if next == 0 {
		next = casCounter.Add(1)
	}
	// Stored values are never mutated, so get may hand them out.
	s.data[key] = &sharedValue{b: append([]byte(nil), value...), cas: next}
	return statusOK
}

// queue is a shared queue; the root context that registered it last is
// told when items arrive.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#shared-queues
type queue struct {
	id    uint32
	mu    sync.Mutex
	items [][]byte
	owner *vm
	root  uint32 // the owner's root context that registered it
}

// register opens or creates the queue name and makes v its owner.
func (s *shared) register(name string, v *vm, root uint32) uint32 {
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	q := s.queues[name]
	if q == nil {
		q = &queue{id: nextQueueID.Add(1)}
		s.queues[name] = q
		queuesByID.Store(q.id, q)
	}
	if !v.probe {
		q.mu.Lock()
		q.owner, q.root = v, root
		q.mu.Unlock()
	}
	return q.id
}

func (s *shared) resolve(name string) (uint32, bool) {
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	q := s.queues[name]
	if q == nil {
		return 0, false
	}
	return q.id, true
}

func queueByID(id uint32) *queue {
	q, ok := queuesByID.Load(id)
	if !ok {
		return nil
	}
	return q.(*queue)
}

// enqueue adds an item and tells the owner, from another goroutine: the
// owner may be the very instance enqueuing, whose lock is held.
func (q *queue) enqueue(b []byte) {
	q.mu.Lock()
	q.items = append(q.items, append([]byte(nil), b...))
	owner, root := q.owner, q.root
	q.mu.Unlock()
	if owner != nil && !owner.dead.Load() {
		go owner.rootCall(root, owner.fn.onQueueReady, uint64(root), uint64(q.id))
	}
}

func (q *queue) dequeue() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, false
	}
	b := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return b, true
}

// metric is a plugin-defined stat. Its value is kept here, for
// proxy_get_metric, and mirrored into the gateway's stats store as
// wasmcustom.<name>, the name Envoy gives plugin metrics.
// https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#metrics
type metric struct {
	typ     uint32
	value   atomic.Int64 // counter and gauge value; histogram record count
	counter filters.Counter
	gauge   filters.Gauge
	hist    filters.Histogram
}

// define returns the id of the metric name of type typ, creating it.
func (s *shared) define(typ uint32, name string, st filters.Stats) (uint32, status) {
	if typ > metricHistogram {
		return 0, statusBadArgument
	}
	s.metricsMu.Lock()
	defer s.metricsMu.Unlock()
	key := string(rune('0'+typ)) + name
	if id, ok := s.byName[key]; ok {
		return id, statusOK
	}
	m := &metric{typ: typ}
	full := "wasmcustom." + name
	if st != nil {
		ms, _ := st.(filters.MetricStats)
		switch {
		case ms != nil:
			root := ms.Root()
			switch typ {
			case metricCounter:
				m.counter = root.Counter(full)
			case metricGauge:
				m.gauge = root.Gauge(full)
			case metricHistogram:
				m.hist = root.Histogram(full)
			}
		case typ == metricCounter:
			m.counter = st.Counter(full)
		}
	}
	id := uint32(len(s.metrics))
	s.metrics = append(s.metrics, m)
	s.byName[key] = id
	return id, statusOK
}

func (s *shared) metric(id uint32) *metric {
	s.metricsMu.RLock()
	defer s.metricsMu.RUnlock()
	if int(id) >= len(s.metrics) {
		return nil
	}
	return s.metrics[id]
}

func (m *metric) increment(d int64) status {
	switch m.typ {
	case metricCounter:
		if d < 0 {
			return statusBadArgument
		}
		m.value.Add(d)
		if m.counter != nil {
			m.counter.Add(uint64(d))
		}
	case metricGauge:
		m.value.Add(d)
		if m.gauge != nil {
			m.gauge.Add(d)
		}
	default:
		return statusBadArgument
	}
	return statusOK
}

func (m *metric) record(v uint64) status {
	switch m.typ {
	case metricCounter:
		old := m.value.Swap(int64(v))
		if m.counter != nil && int64(v) > old {
			m.counter.Add(uint64(int64(v) - old))
		}
	case metricGauge:
		m.value.Store(int64(v))
		if m.gauge != nil {
			m.gauge.Set(int64(v))
		}
	case metricHistogram:
		m.value.Add(1)
		if m.hist != nil {
			m.hist.RecordValue(float64(v))
		}
	}
	return statusOK
}
