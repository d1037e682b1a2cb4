package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// module is a valid Wasm binary module, distinct for each tag: the
// header and a custom section named "waygate" holding tag.
func module(tag string) []byte {
	payload := append([]byte{byte(len("waygate"))}, "waygate"+tag...)
	b := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0, byte(len(payload))}
	return append(b, payload...)
}

// hits counts the requests a test server receives, by kind.
type hits struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *hits) add(k string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[k]++
}

func (h *hits) get(k string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[k]
}

// testRegistry is an OCI registry on loopback, counting manifest and
// blob requests, optionally requiring basic auth.
type testRegistry struct {
	host string // 127.0.0.1:port
	hits hits
	user string
	pass string
}

func startRegistry(t testing.TB, user, pass string) *testRegistry {
	t.Helper()
	r := &testRegistry{user: user, pass: pass}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.user != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.user || p != r.pass {
				r.hits.add("unauthorized")
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"credentials required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		switch {
		case strings.Contains(req.URL.Path, "/manifests/"):
			r.hits.add("manifest " + req.Method)
		case strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet:
			r.hits.add("blob GET")
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push writes img to the registry as repo:tag and returns its
// manifest digest.
func (r *testRegistry) push(t testing.TB, repo string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass})); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Hex
}

// artifactImage is a Wasm OCI artifact holding mod.
func artifactImage(t testing.TB, mod []byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.module.wasm.config.v1+json")
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(mod, WasmLayerMediaType)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// compatImage is a Docker image whose layer holds mod as plugin.wasm,
// under a layer of other files.
func compatImage(t testing.TB, mod []byte, layerType types.MediaType) v1.Image {
	t.Helper()
	img := empty.Image
	if layerType == types.OCILayer {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
	}
	img, err := mutate.Append(img,
		mutate.Addendum{Layer: static.NewLayer(tarGz(t, map[string][]byte{"etc/motd": []byte("hello")}), layerType)},
		mutate.Addendum{Layer: static.NewLayer(tarGz(t, map[string][]byte{"README": []byte("x"), "plugin.wasm": mod}), layerType)},
	)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func tarGz(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, n := range []string{"etc/motd", "README", "plugin.wasm"} {
		b, ok := files[n]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// fileServer serves one module at /plugin.wasm, counting requests;
// fail, if set, answers instead for the first requests it returns a
// status for.
type fileServer struct {
	mod   atomic.Pointer[[]byte]
	count atomic.Int64
	fail  func(n int64) int
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.count.Add(1)
	if s.fail != nil {
		if code := s.fail(n); code != 0 {
			http.Error(w, "failing", code)
			return
		}
	}
	if r.URL.Path != "/plugin.wasm" {
		http.NotFound(w, r)
		return
	}
	w.Write(*s.mod.Load())
}

func newFileServer(mod []byte) *fileServer {
	s := &fileServer{}
	s.mod.Store(&mod)
	return s
}

func get(t testing.TB, f *Fetcher, r Request) []byte {
	t.Helper()
	b, err := f.Get(context.Background(), r)
	if err != nil {
		t.Fatalf("Get(%s): %v", r.URI, err)
	}
	return b
}
