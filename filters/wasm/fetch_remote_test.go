package wasm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/filters/wasm/fetch"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// remotePlugin is the examples plugin adding response header
// x-remote: value, its code named by uri as istiod names a
// WasmPlugin's: through cluster "_", with the pull settings in the VM's
// environment (name, value pairs).
func remotePlugin(t *testing.T, uri, sha, value string, env ...string) *wasmfilterv3.Wasm {
	pb := pluginConf(t, "examples", mode("headers", "header", "x-remote", "value", value))
	vm := pb.GetConfig().GetVmConfig()
	vm.Code = &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
		HttpUri: &corev3.HttpUri{Uri: uri, Timeout: durationpb.New(10e9), HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "_"}},
		Sha256:  sha,
	}}}
	kv := map[string]string{}
	for i := 0; i+1 < len(env); i += 2 {
		kv[env[i]] = env[i+1]
	}
	vm.EnvironmentVariables = &wasmv3.EnvironmentVariables{KeyValues: kv}
	pb.Config.Name = "ns." + value
	return pb
}

// serveRemote runs a gateway with the plugin and checks that it ran on
// a request.
func serveRemote(t *testing.T, pb *wasmfilterv3.Wasm, value string) {
	t.Helper()
	echo := startEcho(t, "backend")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pb)}, hcmtest.StaticCluster("backend", echo.Addr()))
	r := do(t, "GET", g.url+"/x", "")
	if r.status != 200 || r.header.Get("X-Remote") != value {
		t.Fatalf("got %d, x-remote %q; want 200, %q", r.status, r.header.Get("X-Remote"), value)
	}
}

func testPluginCode(t *testing.T) ([]byte, string) {
	b, err := os.ReadFile(pluginPath["examples"])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// TestRemoteHTTPS loads a plugin from an https:// URL as istiod sends
// it, the server's certificate trusted as an insecure registry's is,
// and refuses a module whose sha256 differs, naming the field and both
// digests, and a server whose certificate is not trusted.
func TestRemoteHTTPS(t *testing.T) {
	code, sum := testPluginCode(t)
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(code)
	}))
	t.Cleanup(srv.Close)
	t.Setenv(EnvCacheDir, t.TempDir())
	t.Setenv(EnvInsecureRegistries, "127.0.0.1")

	serveRemote(t, remotePlugin(t, srv.URL+"/examples.wasm", sum, "https"), "https")
	// A second listener and a new config version use the cached module.
	serveRemote(t, remotePlugin(t, srv.URL+"/examples.wasm", "", "again", envResourceVersion, "2"), "again")
	if n := hits.Load(); n != 1 {
		t.Errorf("the server was asked %d times, want 1", n)
	}

	bad := strings.Repeat("0", 64)
	_, err := New(context.Background(), remotePlugin(t, srv.URL+"/other.wasm", bad, "bad"), envForTest(t), DefaultOptions())
	for _, want := range []string{"config.vm_config.code.remote.sha256", sum, bad} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to name %s", err, want)
		}
	}
	o := DefaultOptions()
	o.InsecureRegistries = ""
	_, err = New(context.Background(), remotePlugin(t, srv.URL+"/verified.wasm", sum, "tls"), envForTest(t), o)
	if err == nil || !strings.Contains(err.Error(), "config.vm_config.code.remote.http_uri") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
}

// TestRemoteOCI loads a plugin from images of both formats Istio
// supports, pushed to a registry on loopback that requires the
// credentials of the pull secret istiod sends, and runs it on a
// request; the sha256 is the image's.
func TestRemoteOCI(t *testing.T) {
	code, _ := testPluginCode(t)
	t.Setenv(EnvCacheDir, t.TempDir())
	reg, hits := startAuthRegistry(t, "puller", "s3cret")
	artifact := pushImage(t, reg, "plugins/examples:v1", artifactOf(t, code))
	pushImage(t, reg, "plugins/examples-compat:v1", compatOf(t, code))
	secret := `{"auths":{"` + reg + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("puller:s3cret")) + `"}}}`

	serveRemote(t, remotePlugin(t, "oci://"+reg+"/plugins/examples:v1", artifact, "artifact",
		envPullSecret, secret, envPullPolicy, "IfNotPresent", envResourceVersion, "1"), "artifact")
	serveRemote(t, remotePlugin(t, "oci://"+reg+"/plugins/examples-compat:v1", "", "compat",
		envPullSecret, secret, envResourceVersion, "1"), "compat")

	// IfNotPresent: a new version of the WasmPlugin, a second listener,
	// the cached module; Always: the registry is asked again.
	before := hits.Load()
	serveRemote(t, remotePlugin(t, "oci://"+reg+"/plugins/examples:v1", "", "cached",
		envPullSecret, secret, envPullPolicy, "IfNotPresent", envResourceVersion, "2"), "cached")
	if n := hits.Load() - before; n != 0 {
		t.Errorf("IfNotPresent asked the registry %d times, want none", n)
	}
	serveRemote(t, remotePlugin(t, "oci://"+reg+"/plugins/examples:v1", "", "always",
		envPullSecret, secret, envPullPolicy, "Always", envResourceVersion, "3"), "always")
	if n := hits.Load() - before; n != 1 {
		t.Errorf("Always asked for the manifest %d times, want 1", n)
	}

	_, err := New(context.Background(), remotePlugin(t, "oci://"+reg+"/plugins/examples:v1", "", "nosecret",
		envPullPolicy, "Always", envResourceVersion, "4"), envForTest(t), DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("err = %v, want the registry's refusal", err)
	}
	_, err = New(context.Background(), remotePlugin(t, "oci://"+reg+"/plugins/examples:v1", "", "emptysecret",
		envPullSecret, ""), envForTest(t), DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "key_values["+envPullSecret+"]") {
		t.Fatalf("err = %v, want it to name the pull secret", err)
	}
}

// TestPluginEnvHidesAgentSettings keeps istiod's settings for the
// agent, the pull secret among them, out of the plugin's environment.
func TestPluginEnvHidesAgentSettings(t *testing.T) {
	got := pluginEnv(map[string]string{envPullSecret: "{}", envPullPolicy: "Always", "WASM_TEST": "x"})
	if len(got) != 1 || got["WASM_TEST"] != "x" {
		t.Fatalf("plugin env = %v, want WASM_TEST only", got)
	}
	if got := pluginEnv(map[string]string{envResourceVersion: "1"}); got != nil {
		t.Fatalf("plugin env = %v, want none", got)
	}
}

// startAuthRegistry starts an OCI registry on loopback requiring basic
// auth; hits counts manifest requests.
func startAuthRegistry(t *testing.T, user, pass string) (string, *atomic.Int64) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"credentials required"}]}`, http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			hits.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &hits
}

// pushImage writes img as host/repo (basic auth puller:s3cret) and
// returns its manifest digest.
func pushImage(t *testing.T, host, repo string, img v1.Image) string {
	ref, err := name.ParseReference(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "puller", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Hex
}

// artifactOf is a Wasm OCI artifact image holding code.
func artifactOf(t *testing.T, code []byte) v1.Image {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.module.wasm.config.v1+json")
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(code, fetch.WasmLayerMediaType)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// compatOf is a Docker image whose layer holds code as plugin.wasm.
func compatOf(t *testing.T, code []byte) v1.Image {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "plugin.wasm", Mode: 0o644, Size: int64(len(code)), Typeflag: tar.TypeReg})
	tw.Write(code)
	tw.Close()
	zw.Close()
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(buf.Bytes(), types.DockerLayer)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}
