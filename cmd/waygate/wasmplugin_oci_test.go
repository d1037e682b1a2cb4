package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// ociPlugin is a WasmPlugin whose module is an OCI image, adding
// x-wasm: value to responses.
const ociPlugin = `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: from-registry
  namespace: istio-system
spec:
  url: %s
  sha256: "%s"
  pluginConfig:
    mode: headers
    header: x-wasm
    value: %s
`

// TestRunWasmPluginFromOCI runs `waygate run` with WasmPlugins whose url
// is an image in a registry on loopback (go-containerregistry's), as
// oci://host:port/repo:tag: the control plane sends it as istiod does,
// the gateway pulls the image itself, checks its manifest digest against
// the sha256 and runs the module, from a Wasm OCI artifact and from a
// Docker image holding plugin.wasm; an image that is not there is
// refused and the running plugin keeps serving.
func TestRunWasmPluginFromOCI(t *testing.T) {
	module, err := os.ReadFile(buildTestPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
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
	artifact, err = mutate.Append(artifact, mutate.Addendum{Layer: static.NewLayer(module, fetch.WasmLayerMediaType)})
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

	b := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(b.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
	port := freePort(t)
	dir := t.TempDir()
	write := func(url, sha, value string) {
		t.Helper()
		cfg := fmt.Sprintf(echoGateway, port, backendPort) + fmt.Sprintf(ociPlugin, url, sha, value)
		tmp := filepath.Join(dir, ".gateway.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "gateway.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write("oci://"+host+"/plugins/headers:v1", artifactSum, "artifact")
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, stderr := startRunEnv(t, []string{"WAYGATE_WASM_CACHE_DIR=" + t.TempDir()}, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

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
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := header()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: x-wasm = %q, want %q\nstderr:\n%s", what, got, want, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
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
	var nack string
	waitFor(t, func() bool {
		resp, err := client.Get("http://" + admin + "/config_dump")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		d, _ := io.ReadAll(resp.Body)
		_, nack, _ = strings.Cut(string(d), `"error_state"`)
		return nack != ""
	})
	if i := strings.Index(nack, "}"); i > 0 {
		nack = nack[:i]
	}
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
