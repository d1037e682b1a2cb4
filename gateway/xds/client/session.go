package client

import (
	"context"
	"time"

	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
)

// received is one message from a stream, or the error that ended it.
type received[T any] struct {
	msg T
	err error
}

// receive runs recv in its own goroutine so the session loop can wait on
// responses, held NACKs and cancellation at once. The goroutine ends after
// the first error or when ctx is done; wait blocks until it has.
func receive[T any](ctx context.Context, recv func() (T, error)) (msgs <-chan received[T], wait func()) {
	ch := make(chan received[T])
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := recv()
			select {
			case ch <- received[T]{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() { <-done }
}

// nackDetail is the error_detail of a NACK. Envoy reports rejected config
// with INVALID_ARGUMENT, and istiod logs the message as is.
func nackDetail(err error) *rpcstatus.Status {
	return &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}

// heldNACKs delays NACKs of a version rejected again and again (see
// nackPace). A held NACK is sent when its timer fires, unless a newer
// response of the type superseded it first.
type heldNACKs struct {
	ctx     context.Context
	due     chan heldKey
	pending map[string]heldNACK
	gen     int
}

type heldKey struct {
	typeURL string
	gen     int
}

type heldNACK struct {
	gen    int
	detail *rpcstatus.Status
	timer  *time.Timer
}

func newHeldNACKs(ctx context.Context) *heldNACKs {
	return &heldNACKs{ctx: ctx, due: make(chan heldKey), pending: map[string]heldNACK{}}
}

// hold schedules detail to be sent for typeURL after d.
func (h *heldNACKs) hold(typeURL string, d time.Duration, detail *rpcstatus.Status) {
	h.take(typeURL)
	h.gen++
	key := heldKey{typeURL, h.gen}
	t := time.AfterFunc(d, func() {
		select {
		case h.due <- key:
		case <-h.ctx.Done():
		}
	})
	h.pending[typeURL] = heldNACK{gen: key.gen, detail: detail, timer: t}
}

// take cancels the NACK held for typeURL and returns its detail, or nil.
func (h *heldNACKs) take(typeURL string) *rpcstatus.Status {
	p, ok := h.pending[typeURL]
	if !ok {
		return nil
	}
	p.timer.Stop()
	delete(h.pending, typeURL)
	return p.detail
}

// fired returns the detail to send for a timer that fired, or nil when that
// NACK was superseded meanwhile.
func (h *heldNACKs) fired(k heldKey) *rpcstatus.Status {
	if p, ok := h.pending[k.typeURL]; !ok || p.gen != k.gen {
		return nil
	}
	return h.take(k.typeURL)
}

// stop cancels every held NACK; the stream they belonged to is gone.
func (h *heldNACKs) stop() {
	for t := range h.pending {
		h.take(t)
	}
}

// pump runs a stream's receive loop, the same for both protocols: each
// response goes to handle, and a NACK whose pacing delay ran out is sent
// with answer, until ctx ends or the stream fails. cancel ends the
// stream's context, so the receiving goroutine returns before pump does.
// got reports whether the server answered at all.
func pump[T any](ctx context.Context, cancel context.CancelFunc, recv func() (T, error), held *heldNACKs, handle func(T) error, answer func(typeURL string, detail *rpcstatus.Status) error) (got bool, err error) {
	msgs, wait := receive(ctx, recv)
	defer func() { cancel(); wait() }()
	for {
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case m := <-msgs:
			if m.err != nil {
				return got, m.err
			}
			got = true
			if err := handle(m.msg); err != nil {
				return got, err
			}
		case k := <-held.due:
			if detail := held.fired(k); detail != nil {
				if err := answer(k.typeURL, detail); err != nil {
					return got, err
				}
			}
		}
	}
}
