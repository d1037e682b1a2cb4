package istio

import (
	"strings"
	"testing"
	"time"
)

func TestParseDocumentsFindings(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown field with a suggestion",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      weigth: 100
`,
			want: []string{`error: t.yaml:9: VirtualService default/reviews: spec.http[0].route[0].weigth: unknown field "weigth" in HTTPRouteDestination (did you mean "weight"?)`},
		},
		{
			name: "unknown field listing the valid ones",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  subsets:
  - name: v1
    selector: {version: v1}
`,
			want: []string{`error: t.yaml:8: DestinationRule default/r: spec.subsets[0].selector: unknown field "selector" in Subset; valid fields are labels, name, trafficPolicy`},
		},
		{
			name: "unknown top-level field",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
sepc:
  host: r
`,
			want: []string{`error: t.yaml:4: DestinationRule default/r: sepc: unknown field "sepc"; valid fields are apiVersion, kind, metadata, spec, status`},
		},
		{
			name: "wrong scalar types",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  subsets:
  - name: v1
    labels: {version: 1}
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: many}
`,
			want: []string{
				`error: t.yaml:8: DestinationRule default/r: spec.subsets[0].labels.version: expected a string, got 1; quote it: "1"`,
				`error: t.yaml:11: DestinationRule default/r: spec.trafficPolicy.connectionPool.tcp.maxConnections: expected an integer, got "many"`,
			},
		},
		{
			name: "bad enum and duration",
			yaml: `apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICTER}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r]
  http:
  - route: [{destination: {host: r}}]
    timeout: 1 minute
`,
			want: []string{
				`error: t.yaml:5: PeerAuthentication istio-system/default: spec.mtls.mode: invalid value "STRICTER"; valid values are UNSET, DISABLE, PERMISSIVE, STRICT`,
				`error: t.yaml:14: VirtualService default/r: spec.http[0].timeout: invalid duration "1 minute": use a duration such as 5s, 0.25s, 500ms or 3m`,
			},
		},
		{
			name: "two members of a oneof",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r]
  http:
  - match: [{uri: {exact: /a, prefix: /b}}]
    route: [{destination: {host: r}}]
`,
			want: []string{`error: t.yaml:7: VirtualService default/r: spec.http[0].match[0].uri.prefix: only one of exact, prefix, regex may be set, "exact" is already set`},
		},
		{
			name: "other API groups are skipped, Istio ones are checked",
			yaml: `apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualServce
metadata: {name: r}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
---
apiVersion: networking.istio.io/v2
kind: Gateway
metadata: {name: gw}
`,
			want: []string{
				"info: t.yaml:1: Deployment default/reviews-v1: not an Istio resource (apps/v1); skipped",
				"error: t.yaml:6: VirtualServce default/r: kind: unknown kind \"VirtualServce\" in API group networking.istio.io; known kinds are DestinationRule, EnvoyFilter, Gateway, ProxyConfig, ServiceEntry, Sidecar, VirtualService, WorkloadEntry, WorkloadGroup",
				"warning: t.yaml:9: Sidecar default/default: Waygate does not act on Sidecar resources; skipped",
				"error: t.yaml:13: Gateway default/gw: apiVersion: networking.istio.io/v2 is not served for Gateway; use one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3",
			},
		},
		{
			name: "syntax error in one document keeps the others",
			yaml: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: r
    namespace: x
---
`,
			want: []string{"error: t.yaml:11: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "unknown metadata field",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: r
  lables: {app: r}
spec: {host: r}
`,
			want: []string{`error: t.yaml:5: DestinationRule default/r: metadata.lables: unknown field "lables" in metadata (did you mean "labels"?)`},
		},
		{
			name: "a key set twice",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: a
  host: b
`,
			want: []string{`error: t.yaml:6: DestinationRule default/r: spec.host: field "host" is set twice`},
		},
		{
			name: "missing name and kind",
			yaml: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {namespace: x}
---
metadata: {name: y}
`,
			want: []string{
				"error: t.yaml:3: Gateway x/: metadata.name: required: every resource needs a name",
				"error: t.yaml:5: missing apiVersion or kind: every document must name its resource type",
			},
		},
		{
			name: "defined twice in one file",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec: {host: r}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: r, namespace: default}
spec: {host: r}
`,
			want: []string{"error: t.yaml:6: DestinationRule default/r: defined twice in this file: also at line 1; this one is ignored"},
		},
		{
			name: "list items",
			yaml: `apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: r}
  spec: {host: r, subsets: [{name: v1, lables: {}}]}
- kind: Gateway
`,
			want: []string{
				`error: t.yaml:7: DestinationRule default/r: spec.subsets[0].lables: unknown field "lables" in Subset (did you mean "labels"?)`,
				"error: t.yaml:8: items[1]: missing apiVersion or kind: every document must name its resource type",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, findings := ParseDocuments("t.yaml", []byte(tt.yaml))
			var got []string
			for _, f := range findings {
				got = append(got, f.Severity.String()+": "+f.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseDocumentsResources(t *testing.T) {
	cfg, findings := ParseDocuments("mesh.yaml", []byte(`# leading comment
---
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: gw
  namespace: edge
  labels: {app.kubernetes.io/name: gw}
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
base: &route
  destination: {host: reviews}
apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1alpha3
  kind: VirtualService
  metadata: {name: reviews}
  spec:
    hosts: [reviews]
    http:
    - route:
      - <<: *route
        weight: 100
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: deny, namespace: shop}
  spec: {action: DENY, rules: [{}]}
- apiVersion: extensions.istio.io/v1alpha1
  kind: WasmPlugin
  metadata: {name: p}
  spec: {url: "oci://ghcr.io/x/y:1", phase: AUTHN, pluginConfig: {any: [thing, 1]}}
`))
	if len(findings) != 0 {
		t.Fatalf("findings: %v", findings)
	}
	gw := Key{"Gateway", "edge", "gw"}
	if o := cfg.Origins[gw]; o != (Origin{File: "mesh.yaml", Document: 1, Line: 3}) {
		t.Errorf("gateway origin = %+v", o)
	}
	vs := Key{"VirtualService", "default", "reviews"}
	if o := cfg.Origins[vs]; o != (Origin{File: "mesh.yaml", Document: 2, Line: 19}) {
		t.Errorf("list item origin = %+v", o)
	}
	if got := cfg.VirtualServices[0].Spec.GetHttp()[0].GetRoute()[0]; got.GetDestination().GetHost() != "reviews" || got.GetWeight() != 100 {
		t.Errorf("merged route = %v", got)
	}
	if cfg.VirtualServices[0].Kind != "VirtualService" || cfg.VirtualServices[0].APIVersion != "networking.istio.io/v1" {
		t.Errorf("type meta = %+v", cfg.VirtualServices[0].TypeMeta)
	}
	if got := cfg.Gateways[0].Labels["app.kubernetes.io/name"]; got != "gw" {
		t.Errorf("label = %q", got)
	}
	if len(cfg.AuthorizationPolicies) != 1 || len(cfg.WasmPlugins) != 1 {
		t.Errorf("got %d AuthorizationPolicies, %d WasmPlugins", len(cfg.AuthorizationPolicies), len(cfg.WasmPlugins))
	}
	if got := cfg.Keys(); len(got) != 4 {
		t.Errorf("keys = %v", got)
	}
}

func TestFindingString(t *testing.T) {
	tests := []struct {
		f    Finding
		want string
	}{
		{Finding{File: "bookinfo.yaml", Line: 12, Resource: Key{"VirtualService", "default", "reviews"}, Path: "spec.http[0].route[1].weight", Message: "weights sum to 90, must be 100"},
			"bookinfo.yaml:12: VirtualService default/reviews: spec.http[0].route[1].weight: weights sum to 90, must be 100"},
		{Finding{Resource: Key{"Gateway", "edge", "gw"}, Path: "spec.servers", Message: "required"}, "Gateway edge/gw: spec.servers: required"},
		{Finding{File: "a.yaml", Message: "permission denied"}, "a.yaml: permission denied"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// FuzzParseDocuments feeds arbitrary bytes to the parser: it must never
// panic, and every resource it returns must have an origin.
func FuzzParseDocuments(f *testing.F) {
	f.Add([]byte(reviewsVS))
	f.Add([]byte(gatewayYAML + reviewsRule))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: networking.istio.io/v1, kind: Gateway, metadata: {name: g}, spec: {servers: .nan}}]"))
	f.Add([]byte("---\n--- |\n  x\n---\n{\"apiVersion\": \"security.istio.io/v1\", \"kind\": \"PeerAuthentication\", \"metadata\": {\"name\": \"x\"}, \"spec\": {\"portLevelMtls\": {\"80\": {\"mode\": 2}}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, findings := ParseDocuments("f.yaml", data)
		for _, k := range cfg.Keys() {
			if _, ok := cfg.Origins[k]; !ok {
				t.Fatalf("resource %v has no origin", k)
			}
		}
		for _, f := range findings {
			_ = f.String()
		}
		Validate(cfg)
	})
}

// TestParseDocumentsAliasBomb: aliases that expand a small document into
// millions of nodes are cut off with a finding instead of eating memory.
func TestParseDocumentsAliasBomb(t *testing.T) {
	doc := "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
	for i := 1; i <= 7; i++ {
		prev := "*x" + string(rune('0'+i-1))
		doc += "x" + string(rune('0'+i)) + ": &x" + string(rune('0'+i)) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n"
	}
	cfg, findings := ParseDocuments("bomb.yaml", []byte(doc))
	if len(cfg.Origins) != 0 || len(findings) != 1 || !strings.Contains(findings[0].Message, "too large") {
		t.Errorf("resources %v, findings %v; want one 'too large' finding", cfg.Keys(), findings)
	}
}

// Istio's docs write durations the Go way ("3m", "500ms"); they load as
// the same durations.
func TestParseGoDurations(t *testing.T) {
	cfg, findings := ParseDocuments("dr.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
    connectionPool:
      tcp:
        connectTimeout: 500ms
`))
	if HasErrors(findings) {
		t.Fatalf("findings: %v", findings)
	}
	tp := cfg.DestinationRules[0].Spec.GetTrafficPolicy()
	if got := tp.GetOutlierDetection().GetBaseEjectionTime().AsDuration(); got != 3*time.Minute {
		t.Errorf("baseEjectionTime = %v, want 3m", got)
	}
	if got := tp.GetConnectionPool().GetTcp().GetConnectTimeout().AsDuration(); got != 500*time.Millisecond {
		t.Errorf("connectTimeout = %v, want 500ms", got)
	}
}

// Istio's docs write port-level settings with bare port numbers as keys.
func TestParseIntegerMapKeys(t *testing.T) {
	cfg, findings := ParseDocuments("pa.yaml", []byte(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: p, namespace: default}
spec:
  selector:
    matchLabels: {app: x}
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: DISABLE}
`))
	if HasErrors(findings) {
		t.Fatalf("findings: %v", findings)
	}
	if got := cfg.PeerAuthentications[0].Spec.GetPortLevelMtls()[8080].GetMode().String(); got != "DISABLE" {
		t.Errorf("portLevelMtls[8080] = %s, want DISABLE", got)
	}
}
