package authz

import (
	"fmt"
	"strings"
	"testing"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

// rbac100 is an ALLOW engine of 100 policies shaped as istiod writes
// them (method and path per rule, a JWT principal on every other one),
// none of which matches the benchmark's request until the last.
func rbac100() string {
	var b strings.Builder
	b.WriteString(`rules { action: ALLOW `)
	for i := range 100 {
		principal := `and_ids { ids { any: true } }`
		if i%2 == 1 {
			principal = `and_ids { ids { metadata { filter: "envoy.filters.http.jwt_authn" path { key: "payload" } path { key: "iss" } value { string_match { exact: "issuer-` + fmt.Sprint(i) + `" } } } } }`
		}
		fmt.Fprintf(&b, `policies { key: "ns[default]-policy[p%03d]-rule[0]" value {
			permissions { and_rules {
				rules { or_rules { rules { header { name: ":method" string_match { exact: "POST" } } } rules { header { name: ":method" string_match { exact: "PUT" } } } } }
				rules { or_rules { rules { url_path { path { prefix: "/api/v%d/" } } } rules { url_path { path { exact: "/svc%d" } } } } }
				rules { header { name: ":authority" string_match { suffix: ".example.com" ignore_case: true } } }
			} }
			principals { %s } } } `, i, i, i, principal)
	}
	b.WriteString(`}`)
	return b.String()
}

// BenchmarkRBAC100 evaluates 100 policies per request: 99 miss, the last
// (by name) allows.
func BenchmarkRBAC100(b *testing.B) {
	f := mustNew(b, rbac100(), stats.NewStore().Scope("http.ingress.").Filters())
	x := req{method: "PUT", path: "/api/v98/items?page=2", host: "API.example.com",
		md:  map[string]map[string]any{"envoy.filters.http.jwt_authn": {"payload": map[string]any{"iss": "issuer-99"}}},
		hdr: []string{"User-Agent", "bench", "Accept", "*/*"}}.exchange()
	x.Request.Path = "/svc99"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if st := run(f, x); st != filters.Continue {
			b.Fatalf("denied: %+v", x.LocalReply())
		}
	}
}

// BenchmarkRBACDeny is the 403 path of an allow-nothing policy.
func BenchmarkRBACDeny(b *testing.B) {
	f := mustNew(b, `rules {}`, nil)
	x := req{}.exchange()
	b.ReportAllocs()
	for b.Loop() {
		if st := run(f, x); st != filters.Stop {
			b.Fatal("allowed")
		}
	}
}
