package router

import (
	"net/netip"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/waygate/waygate/filters"
)

func TestHashPolicies(t *testing.T) {
	conn := &filters.Connection{
		RemoteAddr: netip.MustParseAddrPort("192.0.2.7:40000"),
		LocalAddr:  netip.MustParseAddrPort("10.0.0.1:8080"),
	}
	rot := func(h uint64) uint64 { return h<<1 | h>>63 }
	x := xxhash.Sum64String
	tests := []struct {
		name     string
		policies string
		req      *filters.Request
		want     uint64
		ok       bool
	}{
		{"header", `[{header: {header_name: x-user}}]`, newReq("GET", "h", "/", "x-user", "alice"), x("alice"), true},
		{"xxhash of abc is stable across processes", `[{header: {header_name: x-user}}]`, newReq("GET", "h", "/", "x-user", "abc"), 0x44bc2cf5ad770999, true},
		{"missing header", `[{header: {header_name: x-user}}]`, newReq("GET", "h", "/"), 0, false},
		{"pseudo header", `[{header: {header_name: ":authority"}}]`, newReq("GET", "svc.com", "/"), x("svc.com"), true},
		{"header regex_rewrite", `[{header: {header_name: x-user, regex_rewrite: {pattern: {regex: "-.*"}, substitution: ""}}}]`,
			newReq("GET", "h", "/", "x-user", "alice-123"), x("alice"), true},
		{"source ip", `[{connection_properties: {source_ip: true}}]`, newReq("GET", "h", "/"), x("192.0.2.7"), true},
		{"query parameter", `[{query_parameter: {name: id}}]`, newReq("GET", "h", "/p?a=1&id=42"), x("42"), true},
		{"cookie", `[{cookie: {name: sid}}]`, newReq("GET", "h", "/", "cookie", "sid=s1"), x("s1"), true},
		{"two policies fold with a rotation", `[{header: {header_name: a}}, {header: {header_name: b}}]`,
			newReq("GET", "h", "/", "a", "1", "b", "2"), rot(x("1")) ^ x("2"), true},
		{"a missing policy is skipped", `[{header: {header_name: a}}, {header: {header_name: b}}]`,
			newReq("GET", "h", "/", "b", "2"), x("2"), true},
		{"terminal stops the walk", `[{header: {header_name: a}, terminal: true}, {header: {header_name: b}}]`,
			newReq("GET", "h", "/", "a", "1", "b", "2"), x("1"), true},
		{"terminal without a hash does not stop", `[{header: {header_name: a}, terminal: true}, {header: {header_name: b}}]`,
			newReq("GET", "h", "/", "b", "2"), x("2"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oneAction(t, `{prefix: /}`, `{cluster: c, hash_policy: `+tt.policies+`}`)
			h, ok, _ := r.Forward.Hash(HashInput{Request: tt.req, Conn: conn})
			if h != tt.want || ok != tt.ok {
				t.Errorf("Hash = %#x, %v; want %#x, %v", h, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHashRepeatedHeaderOrderDoesNotMatter(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{cluster: c, hash_policy: [{header: {header_name: x}}]}`)
	h1, _, _ := r.Forward.Hash(HashInput{Request: newReq("GET", "h", "/", "x", "a", "x", "b")})
	h2, _, _ := r.Forward.Hash(HashInput{Request: newReq("GET", "h", "/", "x", "b", "x", "a")})
	if h1 != h2 {
		t.Errorf("hashes differ: %#x %#x", h1, h2)
	}
}

func TestHashCookieGeneration(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{cluster: c, hash_policy: [{cookie: {name: sticky, ttl: 3600s, path: /app, attributes: [{name: SameSite, value: Lax}]}}]}`)
	h, ok, c := r.Forward.Hash(HashInput{Request: newReq("GET", "h", "/"), Conn: testConn})
	value := hex16(xxhash.Sum64String(testConn.RemoteAddr.String() + testConn.LocalAddr.String()))
	if !ok || h != xxhash.Sum64String(value) {
		t.Errorf("hash %#x %v, want the hash of the cookie value %s", h, ok, value)
	}
	if want := `sticky="` + value + `"; Max-Age=3600; Path=/app; SameSite=Lax; HttpOnly`; c != want {
		t.Errorf("Set-Cookie\n got %s\nwant %s", c, want)
	}
	// Without a ttl a missing cookie gives no hash.
	r = oneAction(t, `{prefix: /}`, `{cluster: c, hash_policy: [{cookie: {name: sticky}}]}`)
	if _, ok, c := r.Forward.Hash(HashInput{Request: newReq("GET", "h", "/"), Conn: testConn}); ok || c != "" {
		t.Errorf("got a hash without cookie or ttl")
	}
}

func TestHashFilterState(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{cluster: c, hash_policy: [{filter_state: {key: io.example.k}}]}`)
	fs := func(k string) (string, bool) { return "v-" + k, k == "io.example.k" }
	h, ok, _ := r.Forward.Hash(HashInput{Request: newReq("GET", "h", "/"), FilterState: fs})
	if !ok || h != xxhash.Sum64String("v-io.example.k") {
		t.Errorf("Hash = %#x %v", h, ok)
	}
}

func hex16(v uint64) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}
