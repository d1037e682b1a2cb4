package client

import (
	"context"
	"runtime"
	"strings"
	"testing"
)

// TestRunLeavesNothingBehind runs a client and both servers to completion
// and checks every goroutine they started is gone.
func TestRunLeavesNothingBehind(t *testing.T) {
	base := runtime.NumGoroutine()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0")
			srv.set(t, v1.snapshot(t))
			h := newTestHandler()
			c := startClient(t, srv.addr, m.delta, h)
			h.waitSets(t, v1Sets)
			if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
				t.Errorf("second Run = %v, want an already running error", err)
			}
		})
	}
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

func TestRunWithUnreachableServer(t *testing.T) {
	// A port that was just free: nothing listens there.
	srv := startServer(t, "127.0.0.1:0")
	srv.stop()
	h := newTestHandler()
	c := startClient(t, srv.addr, false, h)
	eventually(t, "a connection error in status", func() bool { return c.Status().LastError != "" })
	if st := c.Status(); st.Connected {
		t.Errorf("status = %+v, want disconnected", st)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.applies) != 0 {
		t.Errorf("applied %v without a server", h.applies)
	}
}
