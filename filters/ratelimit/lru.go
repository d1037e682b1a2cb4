package ratelimit

import (
	"container/list"
	"sync"
)

// lru holds the dynamic token buckets of a wildcard descriptor (one per
// distinct value, such as a client address), bounded as Envoy bounds
// them by max_dynamic_descriptors: the least recently used bucket is
// dropped, and a value seen again later starts full.
type lru struct {
	mu    sync.Mutex
	max   int
	order *list.List // front is most recent; values are *lruEntry
	items map[string]*list.Element
}

type lruEntry struct {
	key string
	b   *bucket
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

// get returns the bucket of key, creating it from spec.
func (l *lru) get(key string, spec *bucketSpec) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.items[key]; ok {
		l.order.MoveToFront(e)
		return e.Value.(*lruEntry).b
	}
	b := newBucket(spec)
	l.items[key] = l.order.PushFront(&lruEntry{key: key, b: b})
	if l.order.Len() > l.max {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.items, last.Value.(*lruEntry).key)
	}
	return b
}
