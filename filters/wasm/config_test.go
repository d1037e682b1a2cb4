package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	udpav1 "github.com/cncf/xds/go/udpa/type/v1"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConfigurationBytes(t *testing.T) {
	st, _ := structpb.NewStruct(map[string]any{"header": "x"})
	tests := []struct {
		name string
		cfg  *anypb.Any
		want string
	}{
		{"none", nil, ""},
		{"StringValue", mustAny(t, wrapperspb.String(`{"a":1}`)), `{"a":1}`},
		{"BytesValue", mustAny(t, wrapperspb.Bytes([]byte{1, 2})), "\x01\x02"},
		{"Struct", mustAny(t, st), `{"header":"x"}`},
		{"TypedStruct", mustAny(t, &udpav1.TypedStruct{TypeUrl: "type.googleapis.com/my.Config", Value: st}), `{"header":"x"}`},
		{"other message", mustAny(t, durationpb.New(1)), string(must(proto.Marshal(durationpb.New(1))))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configBytes(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ReplaceAll(string(got), " ", "") != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCompileConfig(t *testing.T) {
	vm := func(runtime string) *wasmv3.PluginConfig_VmConfig {
		return &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{Runtime: runtime}}
	}
	tests := []struct {
		name     string
		pc       *wasmv3.PluginConfig
		err      string
		failOpen bool
	}{
		{"missing", nil, "config: is required", false},
		{"no vm", &wasmv3.PluginConfig{}, "config.vm_config: is required", false},
		{"v8 accepted", &wasmv3.PluginConfig{Vm: vm("envoy.wasm.runtime.v8")}, "", false},
		{"wazero accepted", &wasmv3.PluginConfig{Vm: vm("envoy.wasm.runtime.wazero")}, "", false},
		{"future runtime accepted", &wasmv3.PluginConfig{Vm: vm("envoy.wasm.runtime.next")}, "", false},
		{"null runtime refused", &wasmv3.PluginConfig{Vm: vm("envoy.wasm.runtime.null")}, "linked into Envoy", false},
		{"unknown runtime refused", &wasmv3.PluginConfig{Vm: vm("v8")}, "unknown runtime", false},
		{"fail_open", &wasmv3.PluginConfig{Vm: vm(""), FailOpen: true}, "", true},
		{"FAIL_OPEN", &wasmv3.PluginConfig{Vm: vm(""), FailurePolicy: wasmv3.FailurePolicy_FAIL_OPEN}, "", true},
		{"FAIL_RELOAD closes", &wasmv3.PluginConfig{Vm: vm(""), FailurePolicy: wasmv3.FailurePolicy_FAIL_RELOAD}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := compileConfig(tt.pc)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.failOpen != tt.failOpen {
				t.Errorf("failOpen = %v", c.failOpen)
			}
		})
	}
}

// fileUpstream serves a plugin binary from a real HTTP server, reached
// as the cluster "plugins".
type fileUpstream struct{ addr string }

func (u fileUpstream) RoundTrip(ctx context.Context, cluster string, req *http.Request) (*http.Response, error) {
	if cluster != "plugins" {
		return nil, &net.AddrError{Err: "no such cluster", Addr: cluster}
	}
	r := req.Clone(ctx)
	r.URL.Scheme, r.URL.Host = "http", u.addr
	return http.DefaultTransport.RoundTrip(r)
}

func TestLoadCode(t *testing.T) {
	code, err := os.ReadFile(pluginPath["faults"])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	good := hex.EncodeToString(sum[:])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(filepath.Dir(pluginPath["faults"])))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	up := fileUpstream{ln.Addr().String()}
	remote := func(uri, sha string) *corev3.AsyncDataSource {
		return &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
			HttpUri: &corev3.HttpUri{Uri: uri, HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "plugins"}, Timeout: durationpb.New(5e9)},
			Sha256:  sha,
		}}}
	}
	local := func(ds *corev3.DataSource) *corev3.AsyncDataSource {
		return &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: ds}}
	}
	tests := []struct {
		name string
		src  *corev3.AsyncDataSource
		err  string
	}{
		{"file", local(&corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: pluginPath["faults"]}}), ""},
		{"file url", local(&corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "file://" + pluginPath["faults"]}}), ""},
		{"missing file", local(&corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/nonexistent.wasm"}}), "filename"},
		{"inline", local(&corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: code}}), ""},
		{"remote", remote("http://plugins/faults.wasm", good), ""},
		{"remote upper-case sha", remote("http://plugins/faults.wasm", strings.ToUpper(good)), ""},
		{"remote wrong sha", remote("http://plugins/faults.wasm", strings.Repeat("0", 64)), "has sha256"},
		{"remote without sha", remote("http://plugins/faults.wasm", ""), "sha256: is required"},
		{"remote not found", remote("http://plugins/nothing.wasm", good), "status 404"},
		{"none", &corev3.AsyncDataSource{}, "one of local or remote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := loadCode(context.Background(), tt.src, up)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != string(code) {
				t.Errorf("got %d bytes, want the plugin's %d", len(b), len(code))
			}
		})
	}
}

func TestNotAPlugin(t *testing.T) {
	// The smallest valid module: the magic number and version only.
	empty := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	pb := pluginConf(t, "faults", "")
	pb.GetConfig().GetVmConfig().Code = &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
		Specifier: &corev3.DataSource_InlineBytes{InlineBytes: empty},
	}}}
	if _, err := New(context.Background(), pb, envForTest(t), Options{}); err == nil || !strings.Contains(err.Error(), "not a Proxy-Wasm plugin") {
		t.Fatalf("err = %v", err)
	}
	pb.GetConfig().GetVmConfig().GetCode().GetLocal().Specifier = &corev3.DataSource_InlineString{InlineString: "garbage"}
	if _, err := New(context.Background(), pb, envForTest(t), Options{}); err == nil || !strings.Contains(err.Error(), "compiling") {
		t.Fatalf("err = %v", err)
	}
}

// TestCommandModuleRefused loads the faults plugin built as a WASI
// command (no -buildmode=c-shared): its _start runs main, which exits,
// so the module cannot serve as a plugin, and the error says how to
// build it.
func TestCommandModuleRefused(t *testing.T) {
	_, err := New(context.Background(), pluginConf(t, "command", ""), envForTest(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "build it as a reactor") {
		t.Fatalf("err = %v", err)
	}
}
