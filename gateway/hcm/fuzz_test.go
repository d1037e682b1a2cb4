package hcm

import (
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// FuzzNormalizePath checks, for every combination of the path options,
// that normalization never panics, always yields an origin-form path and
// is idempotent: a normalized path is a fixed point, so a request cannot
// be made to mean two things by normalizing it twice (at two proxies).
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/./x", "//a///b", "/a%2Fb", "/a/%2e%2E/b", `/a\..\b`, "/a/b?q=/../x", "/..", "/%2e%2", "/a/.//..", "/%%2F2F"} {
		f.Add(s)
	}
	var configs []*Config
	for _, esc := range []hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction{
		hcmv3.HttpConnectionManager_KEEP_UNCHANGED,
		hcmv3.HttpConnectionManager_REJECT_REQUEST,
		hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
		hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD,
	} {
		for _, norm := range []bool{false, true} {
			for _, merge := range []bool{false, true} {
				configs = append(configs, &Config{normalizePath: norm, mergeSlashes: merge, escapedSlashes: esc})
			}
		}
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p // the handler refuses anything else before normalizing
		}
		for _, c := range configs {
			out, _, ok := c.normalizePathOf(p)
			if !ok {
				continue
			}
			if !strings.HasPrefix(out, "/") {
				t.Fatalf("%+v: %q normalized to %q, not origin form", c, p, out)
			}
			again, redirect, ok := c.normalizePathOf(out)
			if !ok || again != out || redirect {
				t.Fatalf("%+v: not idempotent: %q -> %q -> %q (ok %v, redirect %v)", c, p, out, again, ok, redirect)
			}
		}
	})
}
