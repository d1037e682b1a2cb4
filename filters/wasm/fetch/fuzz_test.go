package fetch

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

// FuzzParseSource checks that any URI parses or fails without a
// panic, and that a parsed source is consistent: its URI parses to
// itself, and an image's name has neither tag nor digest.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{
		"https://example.com/plugin.wasm", "http://10.0.0.1:8080/a/b.wasm?x=1",
		"oci://ghcr.io/org/plugin:v1", "oci://ghcr.io/org/plugin@sha256:" + strings.Repeat("a", 64),
		"ghcr.io/org/plugin:latest", "localhost:5000/p", "docker.io/library/p", "p",
		"oci://", "https://", "ftp://x", "oci://UPPER/case", "::", "oci://a/b:c@sha256:zz",
	} {
		f.Add(s, "")
		f.Add(s, strings.Repeat("b", 64))
		f.Add(s, "nil")
	}
	f.Fuzz(func(t *testing.T, uri, sha string) {
		src, err := ParseSource(uri)
		if err != nil {
			return
		}
		again, err := ParseSource(src.URI)
		if err != nil || again.URI != src.URI || again.Name != src.Name || again.Kind != src.Kind {
			t.Fatalf("%q parsed to %+v, which parses to %+v, %v", uri, src, again, err)
		}
		if src.Kind == KindOCI && (strings.Contains(strings.TrimPrefix(src.Name, ociPrefix), "@") || src.Host == "") {
			t.Fatalf("%q: image name %q, host %q", uri, src.Name, src.Host)
		}
		want, err := expectedDigest(src, sha)
		if err == nil && want != "" && len(want) != 64 {
			t.Fatalf("%q, %q: digest %q", uri, sha, want)
		}
		_ = src.alwaysPull(PullDefault)
	})
}

// FuzzDockerConfig checks that any pull secret is read or refused
// without a panic, and resolves for any registry.
func FuzzDockerConfig(f *testing.F) {
	for _, s := range []string{
		`{"auths":{"ghcr.io":{"auth":"dXNlcjpwYXNz"}}}`,
		`{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}}}`,
		`{"auths":{}}`, `{}`, `null`, `{"auths":{"x":{"auth":"bm9jb2xvbg=="}}}`, `{"auths":{"x":{"identitytoken":"t"}}}`,
	} {
		f.Add([]byte(s))
	}
	res := []string{"ghcr.io", "index.docker.io", "127.0.0.1:5000", "x"}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseDockerConfig(b)
		if err != nil {
			return
		}
		for _, r := range res {
			a, err := k.Resolve(fakeResource(r))
			if err != nil || a == nil {
				t.Fatalf("Resolve(%s) = %v, %v", r, a, err)
			}
			if _, err := a.Authorization(); err != nil && a != authn.Anonymous {
				t.Fatalf("Authorization(%s): %v", r, err)
			}
		}
	})
}

type fakeResource string

func (r fakeResource) String() string      { return string(r) }
func (r fakeResource) RegistryStr() string { return string(r) }

// FuzzUnbox checks that any fetched body is unwrapped or returned
// without a panic, and never past the size limit.
func FuzzUnbox(f *testing.F) {
	f.Add(module("x"))
	f.Add(tarGz(f, map[string][]byte{"plugin.wasm": module("y")}))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Add([]byte("<html>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := unbox(b, 1<<16)
		if err == nil && len(out) > 1<<16 && len(out) != len(b) {
			t.Fatalf("unboxed %d bytes past the limit", len(out))
		}
	})
}
