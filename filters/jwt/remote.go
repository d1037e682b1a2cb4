package jwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waygate/waygate/filters"
)

// remoteSource is a JWKS fetched through a cluster of the gateway, after
// Envoy's RemoteJwks: cached for cache_duration, fetched in the
// background from the start when async_fetch is set, fetched on the
// first request that needs it otherwise, retried with backoff per
// retry_policy.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto#extensions-filters-http-jwt-authn-v3-remotejwks
//
// Two departures keep the gateway serving: a failed refresh keeps the
// last good set (an outage of the key server does not fail every
// request), and a token whose kid is in no cached key triggers one
// refetch, at most once per refetch interval, so a key rotation is
// picked up before cache_duration ends without letting random kids
// flood the key server.
type remoteSource struct {
	provider, cluster, uri string
	timeout                time.Duration
	cacheDuration          time.Duration
	// refetch is the least time between two fetches that a failure or
	// an unknown kid asks for (async_fetch.failed_refetch_duration, 1s
	// by default).
	refetch              time.Duration
	retries              int
	backoffBase, backMax time.Duration
	// async is set with async_fetch: the background loop refreshes the
	// set, so a fetched set never goes stale for requests, as in Envoy.
	async bool

	up            filters.Upstream
	log           *slog.Logger
	fetched       filters.Counter
	failed        filters.Counter
	ctx           context.Context
	cancel        context.CancelFunc
	maxJWKSBytes  int64
	backgroundWG  sync.WaitGroup
	cur           atomic.Pointer[cachedSet]
	mu            sync.Mutex
	inflight      *flight
	lastAttempt   time.Time
	lastAttemptOK bool
}

// cachedSet is a fetched set and when it stops being fresh.
type cachedSet struct {
	ks      *keySet
	fetched time.Time
	expires time.Time
}

// flight is one fetch that concurrent requests wait for together.
type flight struct {
	done chan struct{}
	ks   *keySet
	err  error
}

// start begins the background refresh of async_fetch: the first fetch
// runs at once but nothing waits for it (fast_listener or not, a
// listener never blocks on a key server), later ones when the set is
// about to expire, or after refetch when one failed.
func (r *remoteSource) start() {
	r.async = true
	r.backgroundWG.Add(1)
	go func() {
		defer r.backgroundWG.Done()
		for {
			wait := r.refetch
			if _, err := r.fetchShared(); err == nil {
				wait = r.cacheDuration
			}
			t := time.NewTimer(wait)
			select {
			case <-r.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}

// close stops the background refresh and any fetch under way.
func (r *remoteSource) close() {
	r.cancel()
	r.backgroundWG.Wait()
}

func (r *remoteSource) keys(ctx context.Context, kid string) (*keySet, status) {
	now := time.Now()
	c := r.cur.Load()
	fresh := c != nil && now.Before(c.expires)
	if fresh && c.ks.hasKid(kid) {
		return c.ks, statusOK
	}
	if !r.mayFetch(now, fresh) {
		if c != nil {
			return c.ks, statusOK
		}
		return nil, statusFetchFail
	}
	ks, err := r.wait(ctx)
	if err != nil {
		if c != nil {
			// Keep serving with the last good set.
			return c.ks, statusOK
		}
		return nil, statusFetchFail
	}
	return ks, statusOK
}

// mayFetch reports whether a request may start (or join) a fetch now:
// at once when the set went stale after a successful fetch, at most
// once per refetch interval after a failure or for an unknown kid.
func (r *remoteSource) mayFetch(now time.Time, fresh bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil || r.lastAttempt.IsZero() {
		return true
	}
	if !fresh && r.lastAttemptOK {
		return true
	}
	return now.Sub(r.lastAttempt) >= r.refetch
}

// wait joins the fetch under way or starts one, and waits for it or for
// ctx. The fetch itself runs on the source's context, so a request that
// goes away does not cancel it for the others.
func (r *remoteSource) wait(ctx context.Context) (*keySet, error) {
	r.mu.Lock()
	f := r.inflight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		r.inflight = f
		go r.run(f)
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.ks, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetchShared runs a fetch as wait does, for the background loop.
func (r *remoteSource) fetchShared() (*keySet, error) { return r.wait(r.ctx) }

func (r *remoteSource) run(f *flight) {
	ks, err := r.fetchWithRetries()
	now := time.Now()
	if err == nil {
		expires := now.Add(r.cacheDuration)
		if r.async {
			expires = now.Add(100 * 365 * 24 * time.Hour)
		}
		r.cur.Store(&cachedSet{ks: ks, fetched: now, expires: expires})
		r.fetched.Inc()
		r.log.Debug("jwks fetched", "provider", r.provider, "uri", r.uri, "cluster", r.cluster, "keys", len(ks.keys))
	} else if r.ctx.Err() == nil {
		r.failed.Inc()
		r.log.Warn("jwks fetch failed; tokens of this provider fail with \"Jwks remote fetch is failed\" until a fetch succeeds (the last good keys are kept meanwhile)",
			"provider", r.provider, "uri", r.uri, "cluster", r.cluster, "error", err)
	}
	r.mu.Lock()
	r.lastAttempt, r.lastAttemptOK = now, err == nil
	r.inflight = nil
	r.mu.Unlock()
	f.ks, f.err = ks, err
	close(f.done)
}

// fetchWithRetries makes the first attempt and retry_policy.num_retries
// more, sleeping a jittered exponential backoff between them as Envoy's
// JwksFetcher does.
func (r *remoteSource) fetchWithRetries() (*keySet, error) {
	var err error
	for attempt := 0; attempt <= r.retries; attempt++ {
		if attempt > 0 {
			d := r.backoffBase << (attempt - 1)
			if d <= 0 || d > r.backMax {
				d = r.backMax
			}
			t := time.NewTimer(rand.N(d) + 1)
			select {
			case <-r.ctx.Done():
				t.Stop()
				return nil, r.ctx.Err()
			case <-t.C:
			}
		}
		var ks *keySet
		if ks, err = r.fetchOnce(); err == nil {
			return ks, nil
		}
		if r.ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}

func (r *remoteSource) fetchOnce() (*keySet, error) {
	if r.up == nil {
		return nil, errors.New("the gateway gives this filter no way to reach clusters")
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.up.RoundTrip(ctx, r.cluster, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if int64(len(body)) > r.maxJWKSBytes {
		return nil, fmt.Errorf("jwks is larger than %d bytes", r.maxJWKSBytes)
	}
	return parseJWKS(body, false)
}
