package wasm

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

// streamLoop runs streams through f from a few goroutines until stopped,
// counting those the plugin failed (a local reply: its fail strategy).
type streamLoop struct {
	stop      chan struct{}
	wg        sync.WaitGroup
	ok, fails atomic.Int64
}

func startStreamLoop(f *Factory, workers int) *streamLoop {
	l := &streamLoop{stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				x := exchange()
				fl := f.NewFilter(x).(*filter)
				st := fl.OnRequestHeaders(x, true)
				x.Response = filters.Response{Status: 200, Header: http.Header{}}
				if st == filters.Continue {
					fl.OnResponseHeaders(x, true)
				}
				fl.OnDone(x)
				if x.LocalReply() != nil {
					l.fails.Add(1)
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *streamLoop) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if n := l.fails.Load(); n > 0 {
		t.Errorf("%d of %d concurrent streams failed", n, n+l.ok.Load())
	}
	if l.ok.Load() == 0 {
		t.Error("no concurrent stream was served")
	}
}

// TestConfigureAbort loads plugins whose proxy_on_configure aborts (a Go
// panic, a trap, proc_exit) while another plugin serves streams: in a
// VM of its own, and joining the serving plugin's VM. Each is refused
// with the reason, so its config is NACKed, and the serving plugin's
// streams and instance carry on untouched.
func TestConfigureAbort(t *testing.T) {
	for _, abort := range []string{"panic", "trap", "exit"} {
		for _, joining := range []bool{false, true} {
			name := abort + " own vm"
			if joining {
				name = abort + " joining"
			}
			t.Run(name, func(t *testing.T) {
				env := envForTest(t)
				o := Options{PoolSize: 1, CloseDelay: -1}
				serving := newFactoryEnv(t, pluginConf(t, "audit", "audit", rootID("serving"), vmID("serving_"+runName(t))), env, o)
				inst := serving.pool.inst.at(0)
				l := startStreamLoop(serving, 3)
				// A stream of the serving plugin midway, between its
				// request and response.
				x := exchange()
				held := serving.NewFilter(x).(*filter)
				held.OnRequestHeaders(x, true)
				time.Sleep(20 * time.Millisecond)

				vm := "aborting_" + runName(t)
				if joining {
					vm = "serving_" + runName(t)
				}
				_, err := New(context.Background(), pluginConf(t, "audit", "abort="+abort, rootID("aborting"), vmID(vm)), env, o)
				if err == nil || !strings.Contains(err.Error(), "proxy_on_configure") {
					t.Errorf("New = %v, want a refusal naming proxy_on_configure", err)
				}
				time.Sleep(20 * time.Millisecond)
				l.finish(t)

				x.Response = filters.Response{Status: 200, Header: http.Header{}}
				held.OnResponseHeaders(x, true)
				held.OnDone(x)
				if x.LocalReply() != nil {
					t.Errorf("the stream midway got %v", x.LocalReply())
				}
				if v := serving.pool.inst.at(0); v != inst || v.dead.Load() {
					t.Error("the serving plugin's instance was killed or replaced")
				}
			})
		}
	}
}

// TestJoiningPluginKeepsQueue loads a plugin into the VM of a queue's
// receiver: the instance that checks the newcomer starts the receiver's
// root context too, which registers the queue again, yet the queue's
// items still reach the receiver serving in the VM.
func TestJoiningPluginKeepsQueue(t *testing.T) {
	env := envForTest(t)
	store := stats.NewStore()
	env.Stats = store.Filters()
	o := Options{PoolSize: 1, CloseDelay: -1}
	recv := "receiver_" + runName(t)
	newFactoryEnv(t, pluginConf(t, "examples", mode("queue-receiver"), vmID(recv)), env, o)
	newFactoryEnv(t, pluginConf(t, "examples", mode("noop"), rootID("joiner"), vmID(recv)), env, o)
	sender := newFactoryEnv(t, pluginConf(t, "examples", mode("queue-sender", "queue_vm", recv)), env, o)
	x := exchange("X-Queue", "item")
	fl := sender.NewFilter(x).(*filter)
	fl.OnRequestHeaders(x, true)
	fl.OnDone(x)
	eventually(t, "the item received", func() bool {
		return store.Counter("wasmcustom.queue_items_received").Value() == 1
	})
}
