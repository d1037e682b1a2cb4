package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/protobuf/types/known/anypb"
)

// Client keeps one ADS stream open to an xDS server and feeds a Handler.
type Client struct {
	opts    Options
	h       Handler
	log     *slog.Logger
	bo      backoff
	running atomic.Bool

	// types and nacks are owned by the Run goroutine.
	types map[string]*typeState
	nacks map[string]*nackPace

	mu     sync.Mutex
	status Status
}

// New returns a client for opts that feeds h. Nothing happens until Run.
func New(opts Options, h Handler) *Client {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		opts:  opts,
		h:     h,
		log:   log.With("xds_server", opts.Address, "delta", opts.Delta),
		bo:    opts.backoff(),
		types: make(map[string]*typeState, len(subscriptionOrder)),
		nacks: map[string]*nackPace{},
		status: Status{
			Address: opts.Address,
			NodeID:  opts.Node.GetId(),
			Delta:   opts.Delta,
			Types:   make(map[string]TypeStatus, len(subscriptionOrder)),
		},
	}
	for _, t := range subscriptionOrder {
		c.types[t] = newTypeState(t)
		c.status.Types[t] = TypeStatus{}
	}
	return c
}

// Run connects, subscribes and reconnects with jittered exponential backoff
// until ctx is done, then returns ctx's error. While disconnected the
// handler keeps the last accepted resources: Run never applies an empty set
// because a connection dropped. Run must not be called concurrently with
// itself; a later call resumes with the subscriptions and versions held.
//
// Before the first stream Run asks the handler for the names it already
// wants, so a client started over a handler that holds state (a restart of
// the client alone) subscribes them at once.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("xds client: Run is already running")
	}
	defer c.running.Store(false)

	conn, err := grpc.NewClient(c.opts.Address, append(c.connectParams(), c.opts.dialOptions()...)...)
	if err != nil {
		return fmt.Errorf("xds client: dial %s: %w", c.opts.Address, err)
	}
	defer conn.Close()

	for _, t := range subscriptionOrder {
		if ts := c.types[t]; !ts.wildcard && ts.names == nil {
			c.updateNames(ts)
		}
	}

	for attempt := 0; ; attempt++ {
		var got bool
		if c.opts.Delta {
			got, err = c.runDelta(ctx, conn)
		} else {
			got, err = c.runSotW(ctx, conn)
		}
		if ctx.Err() != nil {
			c.setDisconnected(nil)
			return ctx.Err()
		}
		c.setDisconnected(err)
		if got {
			// The server answered on that stream: it is up, so the next
			// failure starts the backoff from scratch.
			attempt = 0
		}
		d := c.bo.delay(attempt)
		c.log.Warn("xds stream ended; reconnecting", "err", err, "in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Status returns a copy of the client's current view.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.Types = make(map[string]TypeStatus, len(c.status.Types))
	for t, ts := range c.status.Types {
		ts.Names = slices.Clone(ts.Names)
		if ts.LastNACK != nil {
			n := *ts.LastNACK
			ts.LastNACK = &n
		}
		s.Types[t] = ts
	}
	return s
}

func (c *Client) setConnected() {
	c.mu.Lock()
	c.status.Connected = true
	c.status.Since = time.Now()
	c.status.LastError = ""
	c.mu.Unlock()
	c.log.Info("xds stream open")
}

func (c *Client) setDisconnected(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status.Connected {
		c.status.Since = time.Now()
	}
	c.status.Connected = false
	if err != nil && !errors.Is(err, io.EOF) {
		c.status.LastError = err.Error()
	} else if err != nil {
		c.status.LastError = "stream closed by the server"
	}
}

// apply hands a candidate set to the handler and records the outcome. On
// success the candidate becomes the held set; on error nothing held changes.
func (c *Client) apply(ts *typeState, version, nonce string, set map[string]*anypb.Any, vers map[string]string) error {
	if err := c.h.Apply(ts.url, set); err != nil {
		return err
	}
	ts.held, ts.versions, ts.version = set, vers, version
	delete(c.nacks, ts.url)
	c.mu.Lock()
	st := c.status.Types[ts.url]
	st.Version, st.Nonce, st.Time, st.Resources = version, nonce, time.Now(), len(set)
	c.status.Types[ts.url] = st
	c.mu.Unlock()
	c.log.Debug("xds accepted", "type", ts.url, "version", version, "resources", len(set))
	return nil
}

// rejected records a NACK and returns how long to hold it before sending.
func (c *Client) rejected(typeURL, version, nonce string, err error) time.Duration {
	c.mu.Lock()
	if st, ok := c.status.Types[typeURL]; ok {
		st.LastNACK = &NACK{Version: version, Nonce: nonce, Error: err.Error(), Time: time.Now()}
		c.status.Types[typeURL] = st
	}
	c.mu.Unlock()
	c.log.Warn("xds rejected", "type", typeURL, "version", version, "err", err)

	// Without a version there is no telling a resend from a new push.
	p := c.nacks[typeURL]
	if p == nil || p.version != version || version == "" {
		c.nacks[typeURL] = &nackPace{version: version}
		return 0
	}
	d := c.bo.delay(p.repeats)
	p.repeats++
	return d
}

// nackPace counts consecutive rejections of one version. go-control-plane's
// snapshot cache answers a NACK by resending the version it has, at once,
// so without pacing a bad snapshot turns into a busy loop between the two
// processes until the operator fixes it.
type nackPace struct {
	version string
	repeats int
}

// refreshNames asks the handler for the names of every named type and
// returns the types whose subscription changed, with the names added and
// removed.
func (c *Client) refreshNames() []nameChange {
	var out []nameChange
	for _, t := range subscriptionOrder {
		ts := c.types[t]
		if ts.wildcard {
			continue
		}
		if added, removed := c.updateNames(ts); added != nil || removed != nil {
			out = append(out, nameChange{ts: ts, added: added, removed: removed})
		}
	}
	return out
}

func (c *Client) updateNames(ts *typeState) (added, removed []string) {
	added, removed = ts.setNames(c.h.Names(ts.url))
	if ts.names == nil {
		ts.names = []string{}
	}
	if len(removed) > 0 {
		c.dropUnsubscribed(ts, removed)
	}
	c.mu.Lock()
	st := c.status.Types[ts.url]
	st.Names = slices.Clone(ts.names)
	st.Resources = len(ts.held)
	c.status.Types[ts.url] = st
	c.mu.Unlock()
	return added, removed
}

// dropUnsubscribed applies the held set less the names the handler stopped
// wanting. No response will ever remove them (the server is told to stop
// sending them), so without this a secret or an endpoint set would outlive
// its last reference. Names depend on listeners and clusters only, which
// are never dropped this way, so this Apply does not ask for Names again.
func (c *Client) dropUnsubscribed(ts *typeState, removed []string) {
	set, vers := ts.without(removed)
	if set == nil {
		return
	}
	if err := c.h.Apply(ts.url, set); err != nil {
		// The handler keeps its set; so does the client, and the next
		// response of the type filters the names out.
		c.log.Warn("xds handler refused to drop unsubscribed resources", "type", ts.url, "names", removed, "err", err)
		return
	}
	ts.held, ts.versions = set, vers
}

type nameChange struct {
	ts             *typeState
	added, removed []string
}

// knownTypes lists the subscribed type URLs, for error messages.
func (c *Client) knownTypes() []string {
	return slices.Sorted(maps.Keys(c.types))
}

// connectParams aligns gRPC's own reconnect backoff with the client's, so a
// restarted server is found again within one client backoff step instead of
// gRPC's default (1s base growing to 2 minutes).
func (c *Client) connectParams() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: grpcbackoff.Config{
			BaseDelay:  c.bo.initial,
			Multiplier: 1.6,
			Jitter:     0.2,
			MaxDelay:   c.bo.max,
		},
		MinConnectTimeout: 20 * time.Second,
	})}
}
