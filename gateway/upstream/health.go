package upstream

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// healthConfig is a compiled cluster health_checks entry.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/health_checking
type healthConfig struct {
	proto                                *corev3.HealthCheck
	timeout, interval                    time.Duration
	noTrafficInterval, unhealthyInterval time.Duration
	healthyThreshold, unhealthyThreshold uint32
	// HTTP check.
	http     bool
	path     string
	host     string
	statuses []*typev3.Int64Range
	h2       bool
	// TCP check: bytes to send, and blocks to find, in order, in what
	// comes back. Both empty: a connect-only check.
	send    []byte
	receive [][]byte
}

func (c *healthConfig) same(o *healthConfig) bool {
	return o != nil && proto.Equal(c.proto, o.proto) && c.host == o.host
}

func compileHealth(c *clusterv3.Cluster, cluster string) (*healthConfig, error) {
	hcs := c.GetHealthChecks()
	switch len(hcs) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, errors.New("health_checks: only one health check per cluster is supported, as in Envoy")
	}
	hc := hcs[0]
	var err error
	dur := func(name string, d *durationpb.Duration, def time.Duration, required bool) time.Duration {
		if d == nil {
			if required && err == nil {
				err = fmt.Errorf("health_checks[0].%s: is required", name)
			}
			return def
		}
		if d.CheckValid() != nil || d.AsDuration() <= 0 {
			if err == nil {
				err = fmt.Errorf("health_checks[0].%s: must be a positive duration", name)
			}
			return def
		}
		return d.AsDuration()
	}
	out := &healthConfig{
		proto:             hc,
		timeout:           dur("timeout", hc.GetTimeout(), time.Second, true),
		interval:          dur("interval", hc.GetInterval(), time.Second, true),
		noTrafficInterval: dur("no_traffic_interval", hc.GetNoTrafficInterval(), 60*time.Second, false),
	}
	out.unhealthyInterval = dur("unhealthy_interval", hc.GetUnhealthyInterval(), out.interval, false)
	if hc.GetHealthyThreshold() == nil || hc.GetUnhealthyThreshold() == nil {
		return nil, errors.New("health_checks[0]: healthy_threshold and unhealthy_threshold are required")
	}
	out.healthyThreshold = max(1, hc.GetHealthyThreshold().GetValue())
	out.unhealthyThreshold = max(1, hc.GetUnhealthyThreshold().GetValue())
	if err != nil {
		return nil, err
	}
	switch {
	case hc.GetHttpHealthCheck() != nil:
		h := hc.GetHttpHealthCheck()
		out.http = true
		out.path = h.GetPath()
		if out.path == "" {
			return nil, errors.New("health_checks[0].http_health_check.path: must not be empty")
		}
		out.host = h.GetHost()
		if out.host == "" {
			out.host = cluster
		}
		out.statuses = h.GetExpectedStatuses()
		for i, r := range out.statuses {
			if r.GetStart() < 100 || r.GetEnd() > 600 || r.GetStart() >= r.GetEnd() {
				return nil, fmt.Errorf("health_checks[0].http_health_check.expected_statuses[%d]: [%d, %d) is not a range of statuses within [100, 600)", i, r.GetStart(), r.GetEnd())
			}
		}
		out.h2 = h.GetCodecClientType() == typev3.CodecClientType_HTTP2
	case hc.GetTcpHealthCheck() != nil:
		t := hc.GetTcpHealthCheck()
		if out.send, err = payload(t.GetSend(), "send"); err != nil {
			return nil, err
		}
		for i, r := range t.GetReceive() {
			b, err := payload(r, fmt.Sprintf("receive[%d]", i))
			if err != nil {
				return nil, err
			}
			out.receive = append(out.receive, b)
		}
	default:
		return nil, errors.New("health_checks[0]: only http_health_check and tcp_health_check are supported")
	}
	return out, nil
}

func payload(p *corev3.HealthCheck_Payload, name string) ([]byte, error) {
	switch {
	case p == nil:
		return nil, nil
	case p.GetText() != "":
		b, err := hex.DecodeString(p.GetText())
		if err != nil {
			return nil, fmt.Errorf("health_checks[0].tcp_health_check.%s.text: not hex: %v", name, err)
		}
		return b, nil
	}
	return p.GetBinary(), nil
}

// checker runs a cluster's health check against each of its hosts,
// one session per host. It belongs to the cluster's state in the
// Manager, so host health survives snapshots.
type checker struct {
	cfg      *healthConfig
	cs       *clusterState
	client   *http.Client
	mu       sync.Mutex
	sessions map[*host]context.CancelFunc
	wg       sync.WaitGroup
}

func newChecker(cs *clusterState, cfg *healthConfig) *checker {
	ch := &checker{cfg: cfg, cs: cs, sessions: map[*host]context.CancelFunc{}}
	if cfg.http {
		tr := &http.Transport{
			// Envoy checks a host over the cluster's transport socket:
			// a mesh endpoint is checked over Istio mTLS (tls.go).
			DialContext:        cs.dial,
			DisableCompression: true,
			Protocols:          new(http.Protocols),
		}
		if cfg.h2 {
			tr.Protocols.SetUnencryptedHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
		ch.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return ch
}

// sync starts sessions for new hosts and stops those of hosts gone.
func (ch *checker) sync(live map[string]*host) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for h, cancel := range ch.sessions {
		if live[h.addr] != h {
			cancel()
			delete(ch.sessions, h)
		}
	}
	for _, h := range live {
		if ch.sessions[h] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch.sessions[h] = cancel
		ch.wg.Add(1)
		go ch.session(ctx, h)
	}
}

// stop ends every session; with healthy set (the cluster no longer
// checks), hosts are taken as healthy again.
func (ch *checker) stop(healthy bool) {
	ch.mu.Lock()
	for h, cancel := range ch.sessions {
		cancel()
		if healthy {
			h.hcFailed.Store(false)
		}
	}
	ch.sessions = map[*host]context.CancelFunc{}
	ch.mu.Unlock()
	if ch.client != nil {
		ch.client.CloseIdleConnections()
	}
}

// session checks h until ctx ends. The first check runs at once; a
// host waiting for its first success needs only that one, as in Envoy.
func (ch *checker) session(ctx context.Context, h *host) {
	defer ch.wg.Done()
	first := true
	var oks, fails uint32
	for {
		err := ch.check(ctx, h)
		if ctx.Err() != nil {
			return
		}
		ch.cs.stats.Count(HCAttempt)
		changed := false
		if err == nil {
			ch.cs.stats.Count(HCSuccess)
			oks, fails = oks+1, 0
			if h.hcFailed.Load() && (first || oks >= ch.cfg.healthyThreshold) {
				h.hcFailed.Store(false)
				changed = true
			}
		} else {
			ch.cs.stats.Count(HCFailure)
			oks, fails = 0, fails+1
			if !h.hcFailed.Load() && fails >= ch.cfg.unhealthyThreshold {
				h.hcFailed.Store(true)
				changed = true
			}
		}
		first = false
		if changed {
			ch.cs.m.log().Info("health check changed host state", "cluster", ch.cs.name, "host", h.addr, "healthy", err == nil, "err", err)
			ch.cs.rebuild()
		}
		next := ch.cfg.interval
		switch {
		case h.hcFailed.Load():
			next = ch.cfg.unhealthyInterval
		case !ch.cs.used.Load():
			next = ch.cfg.noTrafficInterval
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// check runs one health check on h.
func (ch *checker) check(ctx context.Context, h *host) error {
	ctx, cancel := context.WithTimeout(ctx, ch.cfg.timeout)
	defer cancel()
	if ch.cfg.http {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.addr+ch.cfg.path, nil)
		if err != nil {
			return err
		}
		req.Host = ch.cfg.host
		req.Header.Set("User-Agent", "Envoy/HC")
		resp, err := ch.client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if !expected(ch.cfg.statuses, resp.StatusCode) {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	c, err := ch.cs.dial(ctx, "tcp", h.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if len(ch.cfg.send) == 0 && len(ch.cfg.receive) == 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write(ch.cfg.send); err != nil {
		return err
	}
	var got []byte
	buf := make([]byte, 4<<10)
	for !containsInOrder(got, ch.cfg.receive) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if containsInOrder(got, ch.cfg.receive) {
				return nil
			}
			return fmt.Errorf("tcp health check: expected payload not received: %w", err)
		}
		if len(got) > 64<<10 {
			return errors.New("tcp health check: expected payload not found in 64 KiB")
		}
	}
	return nil
}

// expected says whether status is healthy: within one of the ranges,
// or 200 when none are configured.
func expected(ranges []*typev3.Int64Range, status int) bool {
	if len(ranges) == 0 {
		return status == http.StatusOK
	}
	for _, r := range ranges {
		if int64(status) >= r.GetStart() && int64(status) < r.GetEnd() {
			return true
		}
	}
	return false
}

// containsInOrder reports whether each block is found in b, in order,
// not necessarily adjacent: Envoy's fuzzy TCP payload match.
func containsInOrder(b []byte, blocks [][]byte) bool {
	for _, blk := range blocks {
		i := bytes.Index(b, blk)
		if i < 0 {
			return false
		}
		b = b[i+len(blk):]
	}
	return true
}
