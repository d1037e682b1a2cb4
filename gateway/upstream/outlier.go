package upstream

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// outlierConfig is a compiled cluster outlier_detection, with Envoy's
// defaults.
//
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/cluster/v3/outlier_detection.proto
type outlierConfig struct {
	proto                               *clusterv3.OutlierDetection
	interval, baseEjection, maxEjection time.Duration
	maxEjectionPercent                  uint32
	consecutive5xx, consecutiveGateway  uint32
	enforcing                           [ejectKinds]uint32
	// split is split_external_local_origin_errors: failures to connect
	// or to get a response count towards consecutiveLocal, not as 5xx.
	split                               bool
	consecutiveLocal                    uint32
	srMinHosts, srVolume, srStdevFactor uint32
	fpThreshold, fpMinHosts, fpVolume   uint32
}

// ejectKind is why a host was ejected; its String is the stat suffix.
type ejectKind uint8

const (
	ejectConsecutive5xx ejectKind = iota
	ejectConsecutiveGateway
	ejectSuccessRate
	ejectFailurePercentage
	ejectConsecutiveLocalOrigin
	ejectKinds
)

func (k ejectKind) String() string {
	return [...]string{"consecutive_5xx", "consecutive_gateway_failure", "success_rate", "failure_percentage", "consecutive_local_origin_failure"}[k]
}

func compileOutlier(o *clusterv3.OutlierDetection) (*outlierConfig, error) {
	if o == nil {
		return nil, nil
	}
	u32 := func(v *wrapperspb.UInt32Value, def uint32) uint32 {
		if v == nil {
			return def
		}
		return v.GetValue()
	}
	var err error
	dur := func(name string, v *durationpb.Duration, def time.Duration) time.Duration {
		if v == nil {
			return def
		}
		if e := v.CheckValid(); e != nil || v.AsDuration() <= 0 {
			err = fmt.Errorf("outlier_detection.%s: must be a positive duration", name)
			return def
		}
		return v.AsDuration()
	}
	c := &outlierConfig{
		proto:              o,
		interval:           dur("interval", o.GetInterval(), 10*time.Second),
		baseEjection:       dur("base_ejection_time", o.GetBaseEjectionTime(), 30*time.Second),
		maxEjection:        dur("max_ejection_time", o.GetMaxEjectionTime(), 300*time.Second),
		maxEjectionPercent: u32(o.GetMaxEjectionPercent(), 10),
		consecutive5xx:     u32(o.GetConsecutive_5Xx(), 5),
		consecutiveGateway: u32(o.GetConsecutiveGatewayFailure(), 5),
		srMinHosts:         u32(o.GetSuccessRateMinimumHosts(), 5),
		srVolume:           u32(o.GetSuccessRateRequestVolume(), 100),
		srStdevFactor:      u32(o.GetSuccessRateStdevFactor(), 1900),
		fpThreshold:        u32(o.GetFailurePercentageThreshold(), 85),
		fpMinHosts:         u32(o.GetFailurePercentageMinimumHosts(), 5),
		fpVolume:           u32(o.GetFailurePercentageRequestVolume(), 50),
	}
	c.enforcing[ejectConsecutive5xx] = u32(o.GetEnforcingConsecutive_5Xx(), 100)
	c.enforcing[ejectConsecutiveGateway] = u32(o.GetEnforcingConsecutiveGatewayFailure(), 0)
	c.enforcing[ejectSuccessRate] = u32(o.GetEnforcingSuccessRate(), 100)
	c.enforcing[ejectFailurePercentage] = u32(o.GetEnforcingFailurePercentage(), 0)
	c.enforcing[ejectConsecutiveLocalOrigin] = u32(o.GetEnforcingConsecutiveLocalOriginFailure(), 100)
	c.split = o.GetSplitExternalLocalOriginErrors()
	c.consecutiveLocal = u32(o.GetConsecutiveLocalOriginFailure(), 5)
	if err != nil {
		return nil, err
	}
	if c.maxEjectionPercent > 100 {
		return nil, fmt.Errorf("outlier_detection.max_ejection_percent: %d is not a percentage within 0-100", c.maxEjectionPercent)
	}
	return c, nil
}

// detector is a cluster's outlier detector: consecutive errors eject a
// host at once; success rate and failure percentage are judged, and
// ejected hosts returned, every interval. A host stays out for
// base_ejection_time times the number of its ejections in a row, at
// most max_ejection_time; and no more than max_ejection_percent of the
// hosts are out at a time, though one always may be.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/outlier
type detector struct {
	cfg  *outlierConfig
	cs   *clusterState
	mu   sync.Mutex // serializes ejections
	quit chan struct{}
	done chan struct{}
	// stopped is set under mu once the cluster replaced the detector:
	// a report still in flight must not eject a host nothing would
	// bring back.
	stopped bool
}

func newDetector(cs *clusterState, cfg *outlierConfig) *detector {
	d := &detector{cfg: cfg, cs: cs, quit: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *detector) sameConfig(c *outlierConfig) bool {
	if d == nil || c == nil {
		return d == nil && c == nil
	}
	return proto.Equal(d.cfg.proto, c.proto)
}

func (d *detector) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	close(d.quit)
	<-d.done
}

// report records one attempt's outcome on h: the upstream's status, or
// a local-origin failure (no connection, a reset or a timeout before the
// response: local), which counts as its status (0 as 503) unless the
// detector splits them (split_external_local_origin_errors). Split
// local-origin failures count towards consecutive_local_origin_failure
// only; their success rate is not judged.
func (d *detector) report(h *host, status int, local bool) {
	var kinds [2]ejectKind
	n := 0
	h.mu.Lock()
	o := &h.outlier
	if d.cfg.split {
		if local {
			o.consecutiveLocal++
			if o.consecutiveLocal == d.cfg.consecutiveLocal {
				kinds[n] = ejectConsecutiveLocalOrigin
				n++
			}
			h.mu.Unlock()
			d.ejectFor(h, kinds[:n])
			return
		}
		o.consecutiveLocal = 0
	} else if status == 0 {
		status = 503
	}
	gateway := status == 502 || status == 503 || status == 504
	if status >= 500 {
		o.failures++
		o.consecutive5xx++
		if o.consecutive5xx == d.cfg.consecutive5xx {
			kinds[n] = ejectConsecutive5xx
			n++
		}
		if gateway {
			o.consecutiveGateway++
			if o.consecutiveGateway == d.cfg.consecutiveGateway {
				kinds[n] = ejectConsecutiveGateway
				n++
			}
		} else {
			o.consecutiveGateway = 0
		}
	} else {
		o.successes++
		o.consecutive5xx = 0
		o.consecutiveGateway = 0
	}
	h.mu.Unlock()
	d.ejectFor(h, kinds[:n])
}

// ejectFor ejects h for the first of kinds enforcement allows.
func (d *detector) ejectFor(h *host, kinds []ejectKind) {
	for _, k := range kinds {
		if d.eject(h, k, time.Now()) {
			d.cs.rebuild()
			break
		}
	}
}

// eject takes h out if enforcement and max_ejection_percent allow.
func (d *detector) eject(h *host, k ejectKind, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || h.ejected.Load() {
		return false
	}
	st := d.cs.stats
	if rand.Uint32N(100) >= d.cfg.enforcing[k] {
		st.ejection(k, false)
		return false
	}
	hosts := d.cs.hostList()
	ejected := 0
	for _, x := range hosts {
		if x.ejected.Load() {
			ejected++
		}
	}
	if ejected > 0 && float64(ejected+1)*100/float64(len(hosts)) > float64(d.cfg.maxEjectionPercent) {
		st.Count(EjectionsOverflow)
		return false
	}
	h.mu.Lock()
	o := &h.outlier
	if d.cfg.baseEjection*time.Duration(o.backoff) < d.cfg.maxEjection {
		o.backoff++
	}
	o.ejectedAt = now
	o.timesEjected++
	o.consecutive5xx, o.consecutiveGateway, o.consecutiveLocal = 0, 0, 0
	h.mu.Unlock()
	h.ejected.Store(true)
	st.ejection(k, true)
	if st != nil {
		st.EjectionsActive.Set(int64(ejected + 1))
	}
	d.cs.m.log().Info("outlier detection ejected host", "cluster", d.cs.name, "host", h.addr, "reason", k.String())
	return true
}

func (d *detector) run() {
	defer close(d.done)
	t := time.NewTicker(d.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-d.quit:
			return
		case now := <-t.C:
			if d.tick(now) {
				d.cs.rebuild()
			}
		}
	}
}

// tick returns ejected hosts whose time is up, lowers the backoff of
// hosts that stayed in, and judges success rates.
func (d *detector) tick(now time.Time) bool {
	hosts := d.cs.hostList()
	changed := false
	type volume struct {
		h    *host
		s, f uint64
	}
	vols := make([]volume, 0, len(hosts))
	for _, h := range hosts {
		h.mu.Lock()
		o := &h.outlier
		if h.ejected.Load() {
			out := min(d.cfg.baseEjection*time.Duration(o.backoff), max(d.cfg.baseEjection, d.cfg.maxEjection))
			if now.Sub(o.ejectedAt) >= out {
				h.ejected.Store(false)
				o.lastUnejected = now
				changed = true
				d.cs.m.log().Info("outlier detection returned host", "cluster", d.cs.name, "host", h.addr)
			}
		} else if o.backoff > 0 && !o.lastUnejected.IsZero() && now.Sub(o.lastUnejected) >= d.cfg.interval {
			o.backoff--
		}
		vols = append(vols, volume{h, o.successes, o.failures})
		o.successes, o.failures = 0, 0
		h.mu.Unlock()
	}
	// Success rate: hosts far below the mean of those with enough
	// requests are outliers.
	var rates []float64
	var rated []*host
	for _, v := range vols {
		if v.s+v.f >= uint64(d.cfg.srVolume) && v.s+v.f > 0 {
			rates = append(rates, 100*float64(v.s)/float64(v.s+v.f))
			rated = append(rated, v.h)
		}
	}
	if len(rated) > 0 && len(rated) >= int(d.cfg.srMinHosts) {
		mean, sd := meanStdev(rates)
		limit := mean - float64(d.cfg.srStdevFactor)/1000*sd
		for i, r := range rates {
			if r < limit && d.eject(rated[i], ejectSuccessRate, now) {
				changed = true
			}
		}
	}
	// Failure percentage: hosts failing more than the threshold.
	var failing []volume
	for _, v := range vols {
		if v.s+v.f >= uint64(d.cfg.fpVolume) && v.s+v.f > 0 {
			failing = append(failing, v)
		}
	}
	if len(failing) > 0 && len(failing) >= int(d.cfg.fpMinHosts) {
		for _, v := range failing {
			if 100*float64(v.f)/float64(v.s+v.f) >= float64(d.cfg.fpThreshold) && d.eject(v.h, ejectFailurePercentage, now) {
				changed = true
			}
		}
	}
	if changed && d.cs.stats != nil {
		n := 0
		for _, h := range hosts {
			if h.ejected.Load() {
				n++
			}
		}
		d.cs.stats.EjectionsActive.Set(int64(n))
	}
	return changed
}

func meanStdev(xs []float64) (float64, float64) {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	v := 0.0
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(v / float64(len(xs)))
}
