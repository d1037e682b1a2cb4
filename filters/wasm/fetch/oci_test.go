package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestImageFormats pulls a module from each image format Istio
// accepts, pushed to a registry on loopback, by tag and by digest,
// with and without the bare-reference form; the sha256 is the image
// manifest's.
func TestImageFormats(t *testing.T) {
	reg := startRegistry(t, "", "")
	tests := []struct {
		name string
		img  func([]byte) v1.Image
	}{
		{"wasm artifact", func(m []byte) v1.Image { return artifactImage(t, m) }},
		{"compat docker", func(m []byte) v1.Image { return compatImage(t, m, types.DockerLayer) }},
		{"compat oci", func(m []byte) v1.Image { return compatImage(t, m, types.OCILayer) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mod := module(tt.name)
			digest := reg.push(t, fmt.Sprintf("plugins/p%d:v1", i), tt.img(mod))
			repo := fmt.Sprintf("%s/plugins/p%d", reg.host, i)
			for _, r := range []Request{
				{URI: "oci://" + repo + ":v1"},
				{URI: "oci://" + repo + ":v1", SHA256: digest},
				{URI: repo + ":v1", SHA256: digest},
				{URI: "oci://" + repo + "@sha256:" + digest},
				{URI: "oci://" + repo + "@sha256:" + digest, SHA256: digest},
			} {
				b, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), r)
				if err != nil {
					t.Fatalf("%+v: %v", r, err)
				}
				if !bytes.Equal(b, mod) {
					t.Fatalf("%+v: got %d bytes, want the module's %d", r, len(b), len(mod))
				}
			}
			// The module's own sha256 is not the image's.
			_, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), Request{URI: "oci://" + repo + ":v1", SHA256: sha256Hex(mod)})
			var ce *ChecksumError
			if !errors.As(err, &ce) || ce.Got != digest {
				t.Fatalf("err = %v, want a checksum error naming the manifest digest %s", err, digest)
			}
		})
	}
}

// TestImageErrors says why an image does not give a module.
func TestImageErrors(t *testing.T) {
	reg := startRegistry(t, "", "")
	reg.push(t, "plugins/nowasm:v1", compatImage(t, []byte("not wasm at all"), types.DockerLayer))
	other := startRegistry(t, "", "")
	pinned := other.push(t, "x:v1", artifactImage(t, module("x")))
	tests := []struct {
		uri, sha, err string
	}{
		{"oci://" + reg.host + "/plugins/missing:v1", "", "NAME_UNKNOWN"},
		{"oci://" + reg.host + "/plugins/nowasm:v1", "", "not a Wasm module"},
		{"oci://" + other.host + "/x@sha256:" + pinned, strings.Repeat("0", 64), "pinned by the reference"},
		{"ftp://example.com/x.wasm", "", "scheme \"ftp\""},
		{"oci://Bad_Ref::", "", "not an image reference"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			_, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), Request{URI: tt.uri, SHA256: tt.sha, Attempts: 1})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

// TestPullPolicy counts registry requests: IfNotPresent uses the cache
// (across a restart too), Always pulls again when the resource's
// version changes (only the manifest when its digest is cached), and
// the default is IfNotPresent but for the latest tag.
func TestPullPolicy(t *testing.T) {
	reg := startRegistry(t, "", "")
	m1 := module("v1")
	reg.push(t, "p:v1", artifactImage(t, m1))
	reg.push(t, "p:latest", artifactImage(t, m1))
	dir := t.TempDir()
	f := New(Options{Dir: dir})
	uri := "oci://" + reg.host + "/p:v1"
	step := func(what string, f *Fetcher, r Request, manifests, blobs int) {
		t.Helper()
		m0, b0 := reg.hits.get("manifest GET"), reg.hits.get("blob GET")
		get(t, f, r)
		if m, b := reg.hits.get("manifest GET")-m0, reg.hits.get("blob GET")-b0; m != manifests || b != blobs {
			t.Fatalf("%s: %d manifest and %d blob requests, want %d and %d", what, m, b, manifests, blobs)
		}
	}
	step("first pull", f, Request{URI: uri, Policy: PullIfNotPresent, Resource: "ns.p", Version: "1"}, 1, 1)
	step("IfNotPresent again", f, Request{URI: uri, Policy: PullIfNotPresent, Resource: "ns.p", Version: "2"}, 0, 0)
	step("IfNotPresent after a restart", New(Options{Dir: dir}), Request{URI: uri, Policy: PullIfNotPresent, Resource: "ns.p", Version: "3"}, 0, 0)
	step("Always, same version", f, Request{URI: uri, Policy: PullAlways, Resource: "ns.p", Version: "2"}, 0, 0)
	step("Always, new version, same image", f, Request{URI: uri, Policy: PullAlways, Resource: "ns.p", Version: "4"}, 1, 0)
	step("default policy, tag v1", f, Request{URI: uri, Resource: "ns.p", Version: "5"}, 0, 0)

	// A new image under the tag is pulled by Always, not IfNotPresent.
	v2 := module("v2")
	reg.push(t, "p:v1", artifactImage(t, v2))
	step("IfNotPresent, image changed", f, Request{URI: uri, Policy: PullIfNotPresent, Resource: "ns.p", Version: "6"}, 0, 0)
	if b := get(t, f, Request{URI: uri, Policy: PullIfNotPresent}); !bytes.Equal(b, m1) {
		t.Fatal("IfNotPresent did not keep the cached module")
	}
	step("Always, image changed", f, Request{URI: uri, Policy: PullAlways, Resource: "ns.p", Version: "7"}, 1, 1)
	if b := get(t, f, Request{URI: uri, Policy: PullIfNotPresent}); !bytes.Equal(b, v2) {
		t.Fatal("Always did not fetch the new module")
	}

	latest := "oci://" + reg.host + "/p:latest"
	step("latest, first", f, Request{URI: latest, Resource: "ns.l", Version: "1"}, 1, 0)
	step("latest, same version", f, Request{URI: latest, Resource: "ns.l", Version: "1"}, 0, 0)
	step("latest, new version", f, Request{URI: latest, Resource: "ns.l", Version: "2"}, 1, 0)
	step("latest, IfNotPresent", f, Request{URI: latest, Policy: PullIfNotPresent, Resource: "ns.l", Version: "3"}, 0, 0)
}

// TestPullSecret pulls from a registry requiring basic auth with the
// credentials of a Docker config JSON, in each form it may hold them.
func TestPullSecret(t *testing.T) {
	reg := startRegistry(t, "puller", "s3cret")
	mod := module("private")
	reg.push(t, "private/p:v1", artifactImage(t, mod))
	uri := "oci://" + reg.host + "/private/p:v1"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		secret string
		err    string
	}{
		{"auth field", `{"auths":{"` + reg.host + `":{"auth":"` + b64("puller:s3cret") + `"}}}`, ""},
		{"username and password", `{"auths":{"` + reg.host + `":{"username":"puller","password":"s3cret"}}}`, ""},
		{"url key", `{"auths":{"http://` + reg.host + `/v2/":{"auth":"` + b64("puller:s3cret") + `"}}}`, ""},
		{"wrong password", `{"auths":{"` + reg.host + `":{"auth":"` + b64("puller:nope") + `"}}}`, "UNAUTHORIZED"},
		{"other registry", `{"auths":{"ghcr.io":{"auth":"` + b64("puller:s3cret") + `"}}}`, "UNAUTHORIZED"},
		{"no secret", "", "UNAUTHORIZED"},
		{"empty secret", " ", "image pull secret: is empty"},
		{"not json", "{", "not a Docker config JSON"},
		{"bad auth", `{"auths":{"` + reg.host + `":{"auth":"!!"}}}`, "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Request{URI: uri, Attempts: 1}
			if tt.secret != "" {
				r.PullSecret = []byte(tt.secret)
			}
			b, err := New(Options{Dir: t.TempDir()}).Get(context.Background(), r)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, mod) {
				t.Fatal("wrong module")
			}
		})
	}
}
