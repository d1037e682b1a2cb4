package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/waygate/waygate/filters/wasm/fetch"
)

// TestRunWasmPluginFromOCI runs `waygate run` with WasmPlugins whose url
// is an image in a registry on loopback (go-containerregistry's), as
// oci://host:port/repo:tag: the control plane sends it as istiod does,
// the gateway pulls the image itself, checks its manifest digest against
// the sha256 and runs the module, from a Wasm OCI artifact and from a
// Docker image holding plugin.wasm; an image that is not there is
// refused and the running plugin keeps serving.
func TestRunWasmPluginFromOCI(t *testing.T) {
	module := testPluginModule(t)
	var manifests atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet {
			manifests.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push := func(repo string, img v1.Image) string {
		t.Helper()
		ref, err := name.ParseReference(host + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.Hex
	}
	// The Wasm OCI artifact: the module as a layer of its own type.
	artifact := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.module.wasm.config.v1+json")
	artifact, err := mutate.Append(artifact, mutate.Addendum{Layer: static.NewLayer(module, fetch.WasmLayerMediaType)})
	if err != nil {
		t.Fatal(err)
	}
	artifactSum := push("plugins/headers:v1", artifact)
	// The "compat" Docker image: plugin.wasm in its last layer.
	compat, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(tarGzFiles(t, map[string][]byte{"plugin.wasm": module}), types.DockerLayer)})
	if err != nil {
		t.Fatal(err)
	}
	compatSum := push("plugins/headers-compat:v1", compat)

	backendPort := echoBackendPort(t)
	port := freePort(t)
	dir := t.TempDir()
	write := func(url, sha, value string) {
		t.Helper()
		writeGatewayConfig(t, dir, fmt.Sprintf(echoGateway, port, backendPort)+remoteWasmPlugin("from-registry", url, sha, "", value))
	}
	write("oci://"+host+"/plugins/headers:v1", artifactSum, "artifact")
	admin, _, stderr := startServingRun(t, []string{"WAYGATE_WASM_CACHE_DIR=" + t.TempDir()}, dir)

	client := &http.Client{Timeout: 5 * time.Second}
	header := func() string {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return "error: " + err.Error()
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Wasm")
	}
	expect := func(what, want string) {
		t.Helper()
		eventually(t, what, stderr, func() (bool, string) {
			got := header()
			return got == want, fmt.Sprintf("x-wasm = %q, want %q", got, want)
		})
	}
	expect("Wasm OCI artifact", "artifact")
	if manifests.Load() == 0 {
		t.Error("the image's manifest was never asked of the registry")
	}

	// The compat image. (A url without scheme is an image too, but
	// istiod, whose parsing the control plane follows, refuses one
	// starting with an IP address and port.)
	write("oci://"+host+"/plugins/headers-compat:v1", compatSum, "compat")
	expect("compat image", "compat")

	// An image the registry does not have: refused, naming the
	// resource, and the plugin in service keeps serving.
	write("oci://"+host+"/plugins/missing:v1", "", "missing")
	nack := waitECDSNACK(t, client, admin)
	if !strings.Contains(nack, "trafficextension/istio-system.from-registry") || !strings.Contains(nack, "plugins/missing") {
		t.Errorf("the ECDS NACK should name the resource and the image: %s", nack)
	}
	if got := header(); got != "compat" {
		t.Errorf("after an image not found: x-wasm = %q, want the running plugin's compat", got)
	}
}

// tarGzFiles is a gzipped tar of files, as a Docker image layer.
func tarGzFiles(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
