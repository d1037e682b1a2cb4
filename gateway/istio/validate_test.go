package istio

import (
	"strings"
	"testing"
)

// findingsOf parses and validates text as file t.yaml and formats every
// finding as "severity: String()".
func findingsOf(t *testing.T, text string) []string {
	t.Helper()
	cfg, findings := ParseDocuments("t.yaml", []byte(text))
	findings = append(findings, Validate(cfg)...)
	out := make([]string, 0, len(findings))
	for _, f := range findings {
		out = append(out, f.Severity.String()+": "+f.String())
	}
	return out
}

func checkFindings(t *testing.T, text string, want []string) {
	t.Helper()
	got := findingsOf(t, text)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const gatewayYAML = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
`

const reviewsRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
---
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "weights must sum to 100",
			yaml: reviewsRule + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 60
    - destination: {host: reviews, subset: v2}
      weight: 30
`,
			want: []string{"error: t.yaml:24: VirtualService default/reviews: spec.http[0].route[1].weight: weights sum to 90, must be 100"},
		},
		{
			// The lines of a resource are worked out from its document
			// when a finding needs one: here an item of a List, after
			// another document.
			name: "weights in an item of a List",
			yaml: reviewsRule + `apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: Gateway
  metadata: {name: gw}
  spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata:
    name: reviews
  spec:
    hosts: [reviews]
    http:
    - route:
      - destination: {host: reviews, subset: v1}
        weight: 60
      - destination: {host: reviews, subset: v2}
        weight: 30
`,
			want: []string{"error: t.yaml:31: VirtualService default/reviews: spec.http[0].route[1].weight: weights sum to 90, must be 100"},
		},
		{
			name: "single destination with a partial weight",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  tcp:
  - route:
    - destination: {host: reviews}
      weight: 50
`,
			want: []string{"error: t.yaml:9: VirtualService default/r: spec.tcp[0].route[0].weight: weights sum to 50, must be 100"},
		},
		{
			name: "unknown gateway, short and qualified; mesh is valid",
			yaml: gatewayYAML + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: shop}
spec:
  hosts: ["*"]
  gateways: [mesh, default/gw, gw, other/gw]
  http:
  - route:
    - destination: {host: web}
`,
			want: []string{
				`error: t.yaml:16: VirtualService shop/r: spec.gateways[2]: Gateway shop/gw not found; define it or use "mesh"`,
				`error: t.yaml:16: VirtualService shop/r: spec.gateways[3]: Gateway other/gw not found; define it or use "mesh"`,
			},
		},
		{
			name: "undefined subsets",
			yaml: reviewsRule + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: v3}
  - route:
    - destination: {host: ratings, subset: v1}
`,
			want: []string{
				`error: t.yaml:20: VirtualService default/r: spec.http[0].route[0].destination.subset: subset "v3" is not defined by DestinationRule default/reviews; defined subsets are v1, v2`,
				`error: t.yaml:22: VirtualService default/r: spec.http[1].route[0].destination.subset: subset "v1" is not defined: no DestinationRule for host ratings.default.svc.cluster.local`,
			},
		},
		{
			name: "subsets of a wildcard destination rule",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all}
spec:
  host: "*.example.com"
  subsets: [{name: blue, labels: {color: blue}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [api.example.com]
  http:
  - route:
    - destination: {host: api.example.com, subset: blue}
      weight: 50
    - destination: {host: api.example.com, subset: green}
      weight: 50
`,
			want: []string{`error: t.yaml:17: VirtualService default/r: spec.http[0].route[1].destination.subset: subset "green" is not defined by DestinationRule default/all; defined subsets are blue`},
		},
		{
			name: "two gateways serve the same port and host",
			yaml: gatewayYAML + `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw2}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [example.com, "*"]
`,
			want: []string{`error: t.yaml:18: Gateway default/gw2: spec.servers[0].hosts[1]: host "*" on port 80 is already served by Gateway default/gw (spec.servers[0].hosts[0])`},
		},
		{
			name: "two destination rules for one host",
			yaml: reviewsRule + `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews2}
spec:
  host: reviews.default.svc.cluster.local
`,
			want: []string{`error: t.yaml:17: DestinationRule default/reviews2: spec.host: host reviews.default.svc.cluster.local already has DestinationRule default/reviews in this namespace; merge the two`},
		},
		{
			name: "bad regexes",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {regex: "/api/(v1"}
      headers:
        x-user: {regex: "a**"}
      queryParams:
        q: {regex: "(?<=x)y"}
      authority: {regex: "ok.*"}
    route:
    - destination: {host: reviews}
`,
			want: []string{
				"error: t.yaml:8: VirtualService default/r: spec.http[0].match[0].uri.regex: invalid RE2 regular expression \"/api/(v1\": missing closing ): `/api/(v1`",
				"error: t.yaml:10: VirtualService default/r: spec.http[0].match[0].headers.x-user.regex: invalid RE2 regular expression \"a**\": invalid nested repetition operator: `**`",
				"error: t.yaml:12: VirtualService default/r: spec.http[0].match[0].queryParams.q.regex: invalid RE2 regular expression \"(?<=x)y\": invalid named capture: `(?<=x)y`",
			},
		},
		{
			name: "two mesh-wide peer authentications",
			yaml: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: permissive, namespace: istio-system}
spec:
  mtls: {mode: PERMISSIVE}
`,
			want: []string{"error: t.yaml:10: PeerAuthentication istio-system/permissive: spec.selector: conflicts with PeerAuthentication istio-system/default: only one mesh-wide policy (no selector) may apply to the mesh"},
		},
		{
			name: "custom authorization without provider",
			yaml: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: web}
spec:
  action: CUSTOM
  rules:
  - to:
    - operation: {ports: ["8080", "http"]}
`,
			want: []string{
				"error: t.yaml:4: AuthorizationPolicy web/ext: spec.provider.name: required when action is CUSTOM: the extension provider (meshConfig.extensionProviders) to call",
				`error: t.yaml:8: AuthorizationPolicy web/ext: spec.rules[0].to[0].operation.ports[1]: port "http" must be a number in 1..65535`,
			},
		},
		{
			name: "missing required fields",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nohosts}
spec:
  tcp:
  - route:
    - destination: {host: a}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: noservers}
spec:
  selector: {istio: ingressgateway}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: nohost}
spec:
  subsets: [{name: v1}]
`,
			want: []string{
				"error: t.yaml:12: Gateway default/noservers: spec.servers: required: at least one server (port, protocol and hosts)",
				"error: t.yaml:5: VirtualService default/nohosts: spec.tcp: a delegate VirtualService (one without hosts) has http rules only; name hosts for tcp and tls routes",
				"error: t.yaml:4: VirtualService default/nohosts: spec.hosts: required: name at least one host the routes apply to, or give a delegate http rules",
				"error: t.yaml:18: DestinationRule default/nohost: spec.host: required: the service the rule applies to",
			},
		},
		{
			name: "fault percentages and negative timeouts",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [ratings]
  http:
  - fault:
      delay: {fixedDelay: 1s, percentage: {value: 150}}
      abort: {httpStatus: 700, percentage: {value: -1}}
    timeout: -2s
    retries: {attempts: 3, perTryTimeout: -0.5s}
    route:
    - destination: {host: ratings}
`,
			want: []string{
				"error: t.yaml:10: VirtualService default/r: spec.http[0].timeout: must not be negative, got -2s",
				"error: t.yaml:11: VirtualService default/r: spec.http[0].retries.perTryTimeout: must not be negative, got -500ms",
				"error: t.yaml:8: VirtualService default/r: spec.http[0].fault.delay.percentage.value: percentage 150 is out of range 0..100",
				"error: t.yaml:9: VirtualService default/r: spec.http[0].fault.abort.percentage.value: percentage -1 is out of range 0..100",
				"error: t.yaml:9: VirtualService default/r: spec.http[0].fault.abort.httpStatus: HTTP status 700 is out of range 200..599",
			},
		},
		{
			name: "port numbers out of range",
			yaml: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 70000, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [api.example.com]
  ports: [{number: 0, name: https, protocol: TLS}]
  resolution: DNS
`,
			want: []string{
				"error: t.yaml:6: Gateway default/gw: spec.servers[0].port.number: port 70000 is out of range 1..65535",
				"error: t.yaml:14: ServiceEntry default/ext: spec.ports[0].number: port 0 is out of range 1..65535",
			},
		},
		{
			name: "static service entry without endpoints",
			yaml: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.internal]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
`,
			want: []string{"error: t.yaml:4: ServiceEntry default/db: spec.endpoints: required when resolution is STATIC: list endpoints or set workloadSelector"},
		},
		{
			name: "https server without tls",
			yaml: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
`,
			want: []string{"error: t.yaml:6: Gateway default/gw: spec.servers[0].tls: required when the protocol is HTTPS"},
		},
		{
			name: "terminating tls without a certificate",
			yaml: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE}
  - port: {number: 8443, name: mtls, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}
  - port: {number: 9443, name: ok, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cert}
  - port: {number: 15443, name: pass, protocol: TLS}
    hosts: [a.example.com]
    tls: {mode: PASSTHROUGH}
`,
			want: []string{
				"error: t.yaml:8: Gateway default/gw: spec.servers[0].tls.credentialName: required for SIMPLE TLS: name a Secret, or set serverCertificate and privateKey",
				"error: t.yaml:11: Gateway default/gw: spec.servers[1].tls.caCertificates: required for MUTUAL TLS: the CA that client certificates are verified against",
			},
		},
		{
			name: "two virtual services route one host through one gateway",
			yaml: gatewayYAML + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: web}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [shop.example.com]
  gateways: [default/gw, mesh]
  http: [{route: [{destination: {host: web2}}]}]
`,
			want: []string{"warning: t.yaml:23: VirtualService default/b: spec.hosts[0]: host shop.example.com on gateway default/gw is also routed by VirtualService default/a; their routes are merged in an unspecified order"},
		},
		{
			name: "wasm plugin with a malformed digest",
			yaml: `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: p}
spec:
  url: oci://ghcr.io/example/filter:1
  sha256: abc
`,
			want: []string{`error: t.yaml:6: WasmPlugin default/p: spec.sha256: "abc" is not a SHA-256 digest: 64 hexadecimal digits`},
		},
		{
			name: "jwt rule without issuer and with a bad jwksUri",
			yaml: `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  jwtRules:
  - jwksUri: "ftp://keys"
`,
			want: []string{
				"error: t.yaml:6: RequestAuthentication default/jwt: spec.jwtRules[0].issuer: required: the iss claim tokens must carry",
				`error: t.yaml:6: RequestAuthentication default/jwt: spec.jwtRules[0].jwksUri: "ftp://keys" is not an http or https URL`,
			},
		},
		{
			name: "exportTo",
			yaml: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [a.example.com]
  exportTo: ["~", "."]
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec:
  host: a.example.com
  exportTo: [Team_A]
`,
			want: []string{
				`error: t.yaml:14: DestinationRule default/dr: spec.exportTo[0]: "Team_A" is not ".", "*", "~" or a namespace name`,
				`error: t.yaml:6: ServiceEntry default/se: spec.exportTo[0]: "~" exports to no namespace and cannot be listed with others`,
			},
		},
		{
			name: "locality load balancing",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: {"us-east/*": 70, "us-west/*": 20}
        failover:
        - {from: us-east, to: us-west}
        failoverPriority: [topology.kubernetes.io/region]
`,
			want: []string{
				"error: t.yaml:8: DestinationRule default/r: spec.trafficPolicy.loadBalancer.localityLbSetting: distribute and failover cannot both be set",
				"error: t.yaml:14: DestinationRule default/r: spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]: the locality label topology.kubernetes.io/region cannot be used with failover; failover already orders by locality",
				"warning: t.yaml:8: DestinationRule default/r: spec.trafficPolicy.loadBalancer.localityLbSetting: failover needs outlierDetection in the same traffic policy: without it no endpoint is ever taken out, and priorities are not applied",
				"error: t.yaml:11: DestinationRule default/r: spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to: the weights add up to 90, not 100",
			},
		},
		{
			name: "envoy filter",
			yaml: `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef, namespace: istio-system}
spec:
  targetRefs: [{kind: Gateway, name: gw}]
  configPatches:
  - applyTo: HTTP_FILTER
    match: {listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          stat_prefx: typo
  - applyTo: CLUSTER
    patch: {operation: REPLACE, value: {name: c}}
  - applyTo: ROUTE_CONFIGURATION
    match: {listener: {portNumber: 80}}
    patch: {operation: MERGE, value: {}}
  - applyTo: HTTP_FILTER
    patch: {operation: REMOVE}
  - applyTo: CLUSTER
    patch: {operation: ADD}
  - applyTo: BOOTSTRAP
    patch: {operation: MERGE, value: {}}
  - applyTo: NETWORK_FILTER
    match: {proxy: {proxyVersion: "^1.2[", metadata: {a: b}}}
    patch:
      operation: ADD
      value: {name: x, typed_config: {"@type": type.googleapis.com/no.such.Type}}
  - patch: {operation: ADD}
  - applyTo: LISTENER
    patch: {value: {}}
`,
			want: []string{
				"warning: t.yaml:5: EnvoyFilter istio-system/ef: spec.targetRefs: targetRefs are not supported; use workloadSelector. The EnvoyFilter applies to no gateway",
				`error: t.yaml:11: EnvoyFilter istio-system/ef: spec.configPatches[0].patch.value: not a valid envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter: unknown field "stat_prefx"`,
				"error: t.yaml:17: EnvoyFilter istio-system/ef: spec.configPatches[1].patch.operation: REPLACE cannot be applied to CLUSTER",
				"error: t.yaml:19: EnvoyFilter istio-system/ef: spec.configPatches[2].match: ROUTE_CONFIGURATION needs a routeConfiguration match",
				"warning: t.yaml:21: EnvoyFilter istio-system/ef: spec.configPatches[3].match.listener.filterChain.filter.subFilter.name: no HTTP filter named: the REMOVE applies to every HTTP filter of the matching connection managers",
				"error: t.yaml:24: EnvoyFilter istio-system/ef: spec.configPatches[4].patch.value: required: the CLUSTER to add",
				"warning: t.yaml:25: EnvoyFilter istio-system/ef: spec.configPatches[5].applyTo: patches to BOOTSTRAP are not supported; this patch is skipped",
				"error: t.yaml:28: EnvoyFilter istio-system/ef: spec.configPatches[6].match.proxy.proxyVersion: not a valid regular expression: error parsing regexp: missing closing ]: `[`",
				`error: t.yaml:31: EnvoyFilter istio-system/ef: spec.configPatches[6].patch.value: not a valid envoy.config.listener.v3.Filter: unable to resolve "type.googleapis.com/no.such.Type": "not found"`,
				"error: t.yaml:32: EnvoyFilter istio-system/ef: spec.configPatches[7].applyTo: required: what the patch applies to",
				"error: t.yaml:34: EnvoyFilter istio-system/ef: spec.configPatches[8].patch.operation: required: how to patch",
			},
		},
		{
			name: "failover priority",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1}
    loadBalancer:
      localityLbSetting:
        failoverPriority:
        - topology.istio.io/network
        - topology.kubernetes.io/zone
        - "=blue"
        - version=v2
`,
			want: []string{
				"error: t.yaml:13: DestinationRule default/r: spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[2]: \"=blue\" names no label",
			},
		},
		{
			name: "retry budget",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: reviews
  trafficPolicy:
    retryBudget:
      percent: 120
      budgetInterval: -1s
    outlierDetection:
      failurePercentageThreshold: 101
`,
			want: []string{
				"error: t.yaml:11: DestinationRule default/r: spec.trafficPolicy.outlierDetection.failurePercentageThreshold: percentage 101 is out of range 0..100",
				"error: t.yaml:8: DestinationRule default/r: spec.trafficPolicy.retryBudget.percent: percentage 120 is out of range 0..100",
				"error: t.yaml:9: DestinationRule default/r: spec.trafficPolicy.retryBudget.budgetInterval: must not be negative, got -1s",
			},
		},
		{
			name: "delegation",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root}
spec:
  hosts: ["*"]
  http:
  - delegate: {name: child}
    route:
    - destination: {host: a}
  - delegate: {namespace: other}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: child}
spec:
  gateways: [mesh]
  http:
  - delegate: {name: grandchild}
`,
			want: []string{
				"error: t.yaml:7: VirtualService default/root: spec.http[0].delegate: a rule that delegates has no route, redirect or directResponse of its own",
				"error: t.yaml:10: VirtualService default/root: spec.http[1].delegate.name: required: the delegate VirtualService's name",
				"error: t.yaml:16: VirtualService default/child: spec.gateways: a delegate VirtualService (one without hosts) takes the gateways of the rules delegating to it; name hosts, or remove gateways",
				"error: t.yaml:18: VirtualService default/child: spec.http[0].delegate: a delegate VirtualService cannot delegate further",
			},
		},
		{
			name: "wasm plugin without url",
			yaml: `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: p}
spec:
  phase: AUTHN
`,
			want: []string{"error: t.yaml:4: WasmPlugin default/p: spec.url: required: file://, http(s):// or oci:// location of the module"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkFindings(t, tt.yaml, tt.want) })
	}
}

func TestFQDN(t *testing.T) {
	tests := []struct{ host, ns, want string }{
		{"reviews", "default", "reviews.default.svc.cluster.local"},
		{"reviews", "", "reviews.default.svc.cluster.local"},
		{"reviews", "shop", "reviews.shop.svc.cluster.local"},
		{"reviews.shop", "default", "reviews.shop"},
		{"api.example.com", "default", "api.example.com"},
		{"*", "default", "*"},
		{"*.example.com", "default", "*.example.com"},
		{"", "default", ""},
	}
	for _, tt := range tests {
		if got := FQDN(tt.host, tt.ns); got != tt.want {
			t.Errorf("FQDN(%q, %q) = %q, want %q", tt.host, tt.ns, got, tt.want)
		}
	}
}

func TestWithoutInvalid(t *testing.T) {
	cfg, findings := ParseDocuments("t.yaml", []byte(reviewsRule+`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: good}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings, subset: v9}
`))
	findings = append(findings, Validate(cfg)...)
	if len(findings) != 1 || findings[0].Resource.Name != "bad" {
		t.Fatalf("findings = %v, want one for default/bad", findings)
	}
	clean := cfg.WithoutInvalid(findings)
	if len(clean.VirtualServices) != 1 || clean.VirtualServices[0].Name != "good" || len(clean.DestinationRules) != 1 {
		t.Errorf("kept %d VirtualServices, %d DestinationRules; want good and reviews", len(clean.VirtualServices), len(clean.DestinationRules))
	}
	if _, ok := clean.Origins[Key{"VirtualService", "default", "bad"}]; ok {
		t.Error("origin of the dropped resource kept")
	}
	if len(cfg.VirtualServices) != 2 {
		t.Error("WithoutInvalid changed the original Config")
	}
	if f := Validate(clean); len(f) != 0 {
		t.Errorf("the cleaned config has findings: %v", f)
	}
}

// TestValidateRegistry checks destinations against the service registry,
// which only a Kubernetes source fills.
func TestValidateRegistry(t *testing.T) {
	cfg, findings := ParseDocuments("t.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
  - route:
    - destination: {host: api.example.com}
  - route:
    - destination: {host: ratings}
`))
	if len(findings) != 0 {
		t.Fatal(findings)
	}
	if f := Validate(cfg); len(f) != 0 {
		t.Errorf("without a registry: %v", f)
	}
	cfg.Services = []*Service{{Hostname: "reviews.default.svc.cluster.local", Namespace: "default", Name: "reviews"}}
	want := "warning: t.yaml:20: VirtualService default/r: spec.http[2].route[0].destination.host: host ratings.default.svc.cluster.local is neither a Service nor a ServiceEntry host; requests routed to it will fail with 503"
	if got := strings.Join(formatFindings(Validate(cfg)), "\n"); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}
