package ca

import (
	"sync"
	"time"
)

// Workloads hands out one certificate per identity and renews it once
// half its lifetime has passed, as Istio's agent does, so every proxy
// of an identity shares a certificate and an unchanged one keeps its
// bytes (and the proxy's SDS version) between pushes.
type Workloads struct {
	CA *CA
	// Lifetime of issued certificates; DefaultLifetime when 0.
	Lifetime time.Duration
	// Now, when set, replaces time.Now in tests.
	Now func() time.Time

	mu    sync.Mutex
	certs map[Identity]*Certificate
}

func (w *Workloads) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Get returns id's current certificate, issuing a new one when there is
// none or the current one is due for renewal.
func (w *Workloads) Get(id Identity) (*Certificate, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.certs[id]; c != nil && w.now().Before(c.renewAt()) {
		return c, nil
	}
	c, err := w.CA.Issue(id, w.Lifetime)
	if err != nil {
		return nil, err
	}
	if w.certs == nil {
		w.certs = map[Identity]*Certificate{}
	}
	w.certs[id] = c
	return c, nil
}

// NextRenewal is when the earliest held certificate is due, or the zero
// time when none is held: the moment to push proxies their new ones.
func (w *Workloads) NextRenewal() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var next time.Time
	for _, c := range w.certs {
		if at := c.renewAt(); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// Forget drops the certificates of identities keep rejects, so ones no
// connected proxy uses are not renewed forever.
func (w *Workloads) Forget(keep func(Identity) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id := range w.certs {
		if !keep(id) {
			delete(w.certs, id)
		}
	}
}
