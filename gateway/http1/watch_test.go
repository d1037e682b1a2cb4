package http1

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

type ctxKey struct{}

// TestWatch watches a real request's context, as the upstream pool does:
// stopped before the context ends, the function never runs; when the
// client goes away it runs once; a context that can end on its own is
// left to context.AfterFunc.
func TestWatch(t *testing.T) {
	type seen struct {
		startPlain, startValue, startDerived bool
		stopBefore                           bool
		ranAfterGone                         int64
		stopAfter                            bool
		startEnded                           bool
		ranEnded                             int64
	}
	got := make(chan seen, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		var ran atomic.Int64
		ctx := r.Context()
		w1 := &Watch{F: func() { ran.Add(1) }}
		s.startPlain = w1.Start(ctx)
		s.stopBefore = w1.Stop()

		w2 := &Watch{F: func() { ran.Add(1) }}
		s.startValue = w2.Start(context.WithValue(ctx, ctxKey{}, 1))
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		s.startDerived = (&Watch{F: func() {}}).Start(derived)

		<-ctx.Done() // the client closes
		s.ranAfterGone = ran.Load()
		s.stopAfter = w2.Stop()
		var ranEnded atomic.Int64
		s.startEnded = (&Watch{F: func() { ranEnded.Add(1) }}).Start(ctx)
		s.ranEnded = ranEnded.Load()
		got <- s
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * bgReadDelay)
	c.Close()
	var s seen
	select {
	case s = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the request's context never ended")
	}
	want := seen{startPlain: true, startValue: true, startDerived: false, stopBefore: true, ranAfterGone: 1, stopAfter: false, startEnded: true, ranEnded: 1}
	if s != want {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
}

// TestWatchOtherContexts: contexts not made by the server are left to
// context.AfterFunc.
func TestWatchOtherContexts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []context.Context{context.Background(), ctx} {
		if (&Watch{F: func() {}}).Start(c) {
			t.Errorf("Start on %v reported true", c)
		}
	}
}
