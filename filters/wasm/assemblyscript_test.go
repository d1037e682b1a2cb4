package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
)

// The AssemblyScript plugins are one module, compiled from
// testdata/assemblyscript with the SDK (@solo-io/proxy-runtime) and the
// asc version its package pins; each plugin is a root context picked by
// root_id.
const asDir = "testdata/assemblyscript"

// ascArgs are the release build flags the SDK's README prescribes:
// aborts go through the SDK's abort_proc_exit, which logs the message
// at critical level before exiting.
var ascArgs = []string{"assembly/index.ts", "--use", "abort=abort_proc_exit", "--optimize"}

var asBuild struct {
	once       sync.Once
	path, skip string
	err        error
}

// asPlugin returns the compiled AssemblyScript module, built once per
// test binary. Where npm is, it runs the CI setup script first, which
// installs the locked packages unless they are there; without npm or
// the packages it skips, unless CI=true, where that fails the test.
func asPlugin(t testing.TB) string {
	t.Helper()
	asBuild.once.Do(func() { asBuild.path, asBuild.skip, asBuild.err = buildAS() })
	if asBuild.err != nil {
		t.Fatal(asBuild.err)
	}
	if asBuild.skip != "" {
		t.Skip(asBuild.skip)
	}
	return asBuild.path
}

func buildAS() (path, skip string, err error) {
	asc := filepath.Join(asDir, "node_modules", "assemblyscript", "bin", "asc")
	if _, err := exec.LookPath("npm"); err == nil {
		// Installs the packages, or checks in a few milliseconds that
		// the installed ones match the lock file.
		cmd := exec.Command("bash", filepath.Join("..", "..", ".ci", "setup.d", "assemblyscript.sh"))
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("installing the AssemblyScript toolchain: %v\n%s", err, b)
		}
	} else if _, err := os.Stat(asc); err != nil {
		if os.Getenv("CI") == "true" {
			return "", "", fmt.Errorf("%s is not installed and npm is missing: run .ci/setup.d/assemblyscript.sh", asc)
		}
		return "", "AssemblyScript toolchain not installed and npm missing (.ci/setup.d/assemblyscript.sh installs it)", nil
	}
	key, err := asSourceKey()
	if err != nil {
		return "", "", err
	}
	// asc takes seconds: keep the module by the hash of its sources,
	// lock file and flags, so reruns on a machine skip it.
	cache := filepath.Join(os.TempDir(), "waygate-assemblyscript")
	path = filepath.Join(cache, key+".wasm")
	if _, err := os.Stat(path); err == nil {
		return path, "", nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.CreateTemp(cache, "build-*.wasm")
	if err != nil {
		return "", "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("node", append([]string{filepath.Join("node_modules", "assemblyscript", "bin", "asc")}, append(ascArgs, "-b", tmp.Name())...)...)
	cmd.Dir = asDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("asc %s: %v\n%s", strings.Join(ascArgs, " "), err, b)
	}
	return path, "", os.Rename(tmp.Name(), path)
}

// asSourceKey hashes what the module is built from.
func asSourceKey() (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, ascArgs)
	files, err := filepath.Glob(filepath.Join(asDir, "assembly", "*.ts"))
	if err != nil {
		return "", err
	}
	slices.Sort(files)
	for _, f := range append(files, filepath.Join(asDir, "package-lock.json")) {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// asConf is a Wasm filter config running the AssemblyScript plugin
// rootID with plugin configuration conf (a StringValue, as istiod sends
// it). Its name and vm_id are rootID and, for the vm_id, the test.
func asConf(t testing.TB, rootID, conf string, opts ...func(*wasmv3.PluginConfig)) *wasmfilterv3.Wasm {
	t.Helper()
	a, err := anypb.New(wrapperspb.String(conf))
	if err != nil {
		t.Fatal(err)
	}
	pc := &wasmv3.PluginConfig{
		Name:          "as_" + rootID,
		RootId:        rootID,
		Configuration: a,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			VmId:    "as_" + rootID + "_" + runName(t),
			Runtime: "envoy.wasm.runtime.v8",
			Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
				Specifier: &corev3.DataSource_Filename{Filename: asPlugin(t)},
			}}},
		}},
	}
	for _, o := range opts {
		o(pc)
	}
	return &wasmfilterv3.Wasm{Config: pc}
}

func asOne(rootID, conf string, opts ...func(*wasmv3.PluginConfig)) func(t *testing.T) []*hcmv3.HttpFilter {
	return func(t *testing.T) []*hcmv3.HttpFilter {
		return []*hcmv3.HttpFilter{wasmFilter(t, asConf(t, rootID, conf, opts...))}
	}
}

func vmConfiguration(s string) func(*wasmv3.PluginConfig) {
	return func(pc *wasmv3.PluginConfig) {
		a, _ := anypb.New(wrapperspb.String(s))
		pc.GetVmConfig().Configuration = a
	}
}

// TestAssemblyScriptPlugins runs plugins written with the
// AssemblyScript SDK through a real connection manager chain, with real
// upstreams, and checks what the client and the upstreams saw.
func TestAssemblyScriptPlugins(t *testing.T) {
	asPlugin(t)
	tests := []struct {
		name    string
		plugins func(t *testing.T) []*hcmv3.HttpFilter
		run     func(t *testing.T, g *gateway, u *upstreams)
	}{
		{"headers", asOne("headers", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			r := do(t, "GET", g.url+"/h?header=x-from-backend=orig&header=x-drop=1", "",
				"x-as-replaced", "old", "x-as-removed", "gone", "x-client", "a", "x-client", "b")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			h := r.echo(t).Headers
			for k, want := range map[string]string{
				"x-as-added":         "added",
				"x-as-replaced":      "new",
				"x-as-path":          "/h?header=x-from-backend=orig&header=x-drop=1",
				"x-as-method":        "GET",
				"x-as-client-values": "a;b;",
			} {
				if h[k] != want {
					t.Errorf("upstream saw %s = %q, want %q", k, h[k], want)
				}
			}
			if v, ok := h["x-as-removed"]; ok {
				t.Errorf("upstream saw removed header x-as-removed = %q", v)
			}
			for k, want := range map[string]string{
				"X-As-Response":  "hello",
				"X-From-Backend": "rewritten",
				"X-Drop":         "",
				"X-As-Status":    "200",
				"Content-Type":   "application/json",
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("client saw %s = %q, want %q", k, got, want)
				}
			}
			if r.header.Get("X-As-Pairs") == "" || r.header.Get("X-As-Set-Pairs") != "0" {
				t.Errorf("response pairs set back lack x-as-pairs or x-as-set-pairs=0: %v", r.header)
			}
			// Each request allocates in the guest's reference-counted
			// heap, through buffers the host fills: many in a row show
			// no corruption.
			for i := range 300 {
				h := do(t, "GET", g.url+"/n", "", "x-client", fmt.Sprint(i)).echo(t).Headers
				if h["x-as-client-values"] != fmt.Sprint(i)+";" || h["x-as-path"] != "/n" {
					t.Fatalf("request %d: upstream saw %v", i, h)
				}
			}
		}},
		{"request body", asOne("body", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			r := do(t, "POST", g.url+"/", "hello", "host", "body", "x-as-body", "request")
			if r.status != 200 || r.body != "request of 5 bytes: HELLO" {
				t.Fatalf("got %d %q", r.status, r.body)
			}
			big := strings.Repeat("abcdefghij", 10000) // several chunks
			r = do(t, "POST", g.url+"/", big, "host", "body", "x-as-body", "request")
			if want := "request of 100000 bytes: " + strings.ToUpper(big); r.status != 200 || r.body != want {
				t.Fatalf("got %d, %d bytes %.40q", r.status, len(r.body), r.body)
			}
		}},
		{"response body", asOne("body", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			big := strings.Repeat("0123456789", 10000) + "tail"
			r := do(t, "POST", g.url+"/", big, "host", "body", "x-as-body", "response")
			if want := "response of 100004 bytes ending in tail"; r.status != 200 || r.body != want {
				t.Fatalf("got %d %.80q, want %q", r.status, r.body, want)
			}
		}},
		{"local response", asOne("local", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			r := do(t, "GET", g.url+"/deny/x", "")
			if r.status != 403 || r.body != "denied by assemblyscript" || r.header.Get("X-As-Local") != "yes" || r.header.Get("Content-Type") != "text/plain" {
				t.Fatalf("got %d %v %q", r.status, r.header, r.body)
			}
			if n := u.backend.Requests(); n != 0 {
				t.Errorf("backend saw %d requests, want none", n)
			}
			if r := do(t, "GET", g.url+"/allowed", ""); r.status != 200 || r.echo(t).Path != "/allowed" {
				t.Fatalf("got %d %q", r.status, r.body)
			}
		}},
		{"http call", asOne("callout", "auth"), func(t *testing.T, g *gateway, u *upstreams) {
			r := do(t, "GET", g.url+"/", "", "x-token", "allow")
			if r.status != 200 || !strings.HasPrefix(r.echo(t).Headers["x-as-auth"], "granted by ") {
				t.Fatalf("allowed: got %d %s", r.status, r.body)
			}
			r = do(t, "GET", g.url+"/", "", "x-token", "deny")
			if r.status != 403 || r.body != "auth said 200 deny" || r.header.Get("X-As-Callout") != "denied" {
				t.Fatalf("denied: got %d %v %q", r.status, r.header, r.body)
			}
		}},
		{"http call unreachable", asOne("callout", "nowhere"), func(t *testing.T, g *gateway, u *upstreams) {
			// A call to a cluster the gateway does not have is refused
			// at once with BAD_ARGUMENT (2), as Envoy does, and the
			// backend sees nothing.
			r := do(t, "GET", g.url+"/", "", "x-token", "allow")
			if r.status != 503 || r.body != "callout refused: 2" {
				t.Fatalf("got %d %q, want 503 %q", r.status, r.body, "callout refused: 2")
			}
			if n := u.backend.Requests(); n != 0 {
				t.Errorf("backend saw %d requests, want none", n)
			}
		}},
		{"tick", asOne("tick", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			for range 3 {
				r := do(t, "GET", g.url+"/", "")
				if r.status != 200 || r.echo(t).Headers["x-as-ticked"] != "yes" {
					t.Fatalf("got %d %s", r.status, r.body)
				}
			}
			if n := g.store.Counter("wasmcustom.as_ticks").Value(); n < 1 {
				t.Errorf("as_ticks = %d", n)
			}
		}},
		{"shared data", asOne("shared", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			for want := 1; want <= 4; want++ {
				r := do(t, "GET", g.url+"/", "")
				if got := r.header.Get("X-As-Shared-Count"); got != fmt.Sprint(want) {
					t.Fatalf("request %d: x-as-shared-count %q", want, got)
				}
				if got := r.header.Get("X-As-Stale-Cas"); got != "8" {
					t.Errorf("request %d: a write with a stale CAS returned %q, want 8 (CAS_MISMATCH)", want, got)
				}
			}
		}},
		{"shared queue", func(t *testing.T) []*hcmv3.HttpFilter {
			recv := "as_receiver_" + runName(t)
			return []*hcmv3.HttpFilter{
				wasmFilter(t, asConf(t, "queue_recv", "-", vmID(recv))),
				wasmFilter(t, asConf(t, "queue_send", recv)),
			}
		}, func(t *testing.T, g *gateway, u *upstreams) {
			for i := range 5 {
				if got := do(t, "GET", g.url+"/", "", "x-queue", fmt.Sprint(i)).echo(t).Headers["x-as-enqueued"]; got != "0" {
					t.Fatalf("enqueue returned %q", got)
				}
			}
			eventually(t, "5 queue items received", func() bool {
				return g.store.Counter("wasmcustom.as_queue_items").Value() == 5
			})
			if v := g.store.Gauge("wasmcustom.as_queue_sum").Value(); v != 10 {
				t.Errorf("as_queue_sum = %d, want 10", v)
			}
		}},
		{"metrics", asOne("metrics", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			for i := 1; i <= 3; i++ {
				if got := do(t, "GET", g.url+"/", "", "x-len", "abc").echo(t).Headers["x-as-count"]; got != fmt.Sprint(i) {
					t.Fatalf("request %d: x-as-count %q", i, got)
				}
			}
			if n := g.store.Counter("wasmcustom.as_requests").Value(); n != 3 {
				t.Errorf("counter = %d, want 3", n)
			}
			if v := g.store.Gauge("wasmcustom.as_last_length").Value(); v != 3 {
				t.Errorf("gauge = %d, want 3", v)
			}
			if s := g.store.Histogram("wasmcustom.as_length").Snapshot(); s.Count != 3 || s.Sum != 9 {
				t.Errorf("histogram = %d values summing to %v, want 3 and 9", s.Count, s.Sum)
			}
		}},
		{"properties", asOne("properties", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			h := do(t, "GET", g.url+"/p/q?x=1", "", "x-probe", "here").echo(t).Headers
			for k, want := range map[string]string{
				"request.path":            "/p/q?x=1",
				"request.url_path":        "/p/q",
				"request.method":          "GET",
				"request.scheme":          "http",
				"request.protocol":        "HTTP/1.1",
				"request.headers.x-probe": "here",
				"plugin_name":             "as_properties",
				"plugin_root_id":          "properties",
				"plugin_vm_id":            "as_properties_" + runName(t),
				"node.id":                 "waygate-test",
				"cluster_name":            "backend",
				"as.custom":               "kept",
				"missing":                 "status 1", // NOT_FOUND
			} {
				if got := h["x-as-prop-"+k]; got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if !strings.HasPrefix(h["x-as-prop-source.address"], "127.0.0.1:") || !strings.HasPrefix(h["x-as-prop-destination.address"], "127.0.0.1:") {
				t.Errorf("source %q destination %q", h["x-as-prop-source.address"], h["x-as-prop-destination.address"])
			}
			if !strings.HasSuffix(h["x-as-prop-source.address"], ":"+h["x-as-prop-source.port"]) {
				t.Errorf("source.port %q does not match source.address %q", h["x-as-prop-source.port"], h["x-as-prop-source.address"])
			}
			if h["x-as-prop-request.time"] == "" || len(h["x-as-prop-request.time"]) != len(h["x-as-now"]) || h["x-as-prop-request.time"] > h["x-as-now"] {
				t.Errorf("request.time %q, now %q", h["x-as-prop-request.time"], h["x-as-now"])
			}
		}},
		{"configuration", asOne("config", "plugin-conf", vmConfiguration("vm-conf")), func(t *testing.T, g *gateway, u *upstreams) {
			h := do(t, "GET", g.url+"/", "").echo(t).Headers
			if h["x-as-vm-config"] != "vm-conf" || h["x-as-plugin-config"] != "plugin-conf" {
				t.Fatalf("vm config %q, plugin config %q", h["x-as-vm-config"], h["x-as-plugin-config"])
			}
		}},
		{"crash fails the stream", asOne("crash", "-"), func(t *testing.T, g *gateway, u *upstreams) {
			if r := do(t, "GET", g.url+"/", "", "x-as-crash", "1"); r.status != 503 {
				t.Fatalf("crashing request: got %d %q", r.status, r.body)
			}
			if n := u.backend.Requests(); n != 0 {
				t.Errorf("backend saw %d requests", n)
			}
			for range 3 {
				if r := do(t, "GET", g.url+"/", ""); r.status != 200 || r.echo(t).Headers["x-as-crash-survived"] != "yes" {
					t.Fatalf("after the crash: got %d %s", r.status, r.body)
				}
			}
			if n := g.store.Counter("wasm.as_crash.vm_failures").Value(); n != 1 {
				t.Errorf("vm_failures = %d, want 1", n)
			}
		}},
		{"crash fail open", asOne("crash", "-", failOpen), func(t *testing.T, g *gateway, u *upstreams) {
			r := do(t, "GET", g.url+"/", "", "x-as-crash", "1")
			if r.status != 200 || r.echo(t).Headers["x-as-crash-survived"] != "" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, cs := startUpstreams(t)
			g := startGateway(t, tt.plugins(t), cs...)
			tt.run(t, g, u)
		})
	}
}

// logRecorder keeps the messages logged through it, with their level.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

func (l *logRecorder) has(s string) bool { return slices.Contains(l.snapshot(), s) }

// TestAssemblyScriptEmptyConfiguration checks that an SDK plugin given
// no configuration, whose onConfigure then reads through a null pointer
// (the SDK's doing, in Envoy too), fails the config build with the trap
// as the reason, and leaves the process serving.
func TestAssemblyScriptEmptyConfiguration(t *testing.T) {
	asPlugin(t)
	_, err := New(context.Background(), asConf(t, "headers", ""), envForTest(t), Options{PoolSize: 1})
	if err == nil || !strings.Contains(err.Error(), "proxy_on_configure") || !strings.Contains(err.Error(), "out of bounds memory access") {
		t.Fatalf("err = %v, want proxy_on_configure's trap", err)
	}
}

// TestAssemblyScriptLogging checks that a plugin's logs reach the
// gateway's log at their level, and that a configuration the plugin
// refuses fails the build with the plugin's error log as the reason.
func TestAssemblyScriptLogging(t *testing.T) {
	asPlugin(t)
	rec := &logRecorder{}
	env := filters.Env{Log: slog.New(rec)}
	f, err := New(context.Background(), asConf(t, "config", "plugin-conf", vmConfiguration("vm-conf")), env, Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x := exchange()
	x.Request.Path = "/logged"
	fl := f.NewFilter(x).(*filter)
	if st := fl.OnRequestHeaders(x, true); st != filters.Continue {
		t.Fatalf("request headers: %v", st)
	}
	fl.OnDone(x)
	for _, want := range []string{"INFO as config: vm vm-conf, plugin plugin-conf", "WARN as config: request to /logged"} {
		if !rec.has(want) {
			t.Errorf("log lacks %q; got %q", want, rec.snapshot())
		}
	}

	// An abort's message reaches the log at critical level before the
	// instance dies.
	crash := &logRecorder{}
	cf, err := New(context.Background(), asConf(t, "crash", "-"), filters.Env{Log: slog.New(crash)}, Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	x = exchange("x-as-crash", "1")
	cfl := cf.NewFilter(x).(*filter)
	cfl.OnRequestHeaders(x, true)
	cfl.OnDone(x)
	if !slices.ContainsFunc(crash.snapshot(), func(m string) bool {
		return strings.HasPrefix(m, "ERROR+4 crash requested at: assembly/crash.ts(")
	}) {
		t.Errorf("no critical log of the abort; got %q", crash.snapshot())
	}

	_, err = New(context.Background(), asConf(t, "config", "reject"), filters.Env{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, Options{PoolSize: 1})
	if err == nil || !strings.Contains(err.Error(), "as config: rejected configuration reject") {
		t.Fatalf("rejected configuration: err = %v", err)
	}
}

// HasCluster tells the view's clusters, as the gateway's cluster caller
// tells its snapshot's, so plugins' calls to unknown clusters are
// refused at once.
func (u viewUpstream) HasCluster(cluster string) bool { return u.view.Cluster(cluster) != nil }

// TestAssemblyScriptNoop runs the no-op plugin the benchmarks measure:
// every phase continues. It is given a configuration because the SDK
// reads an empty one through a null pointer (see
// TestAssemblyScriptEmptyConfiguration).
func TestAssemblyScriptNoop(t *testing.T) {
	f := newFactory(t, asConf(t, "noop", "noop"), Options{PoolSize: 1})
	for range 3 {
		if err := stream(f, nil); err != nil {
			t.Fatal(err)
		}
	}
}
