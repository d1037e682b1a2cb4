package translate

import (
	"strings"
	"testing"

	localrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/istio"
	"github.com/waygate/waygate/gateway/rls"
	"github.com/waygate/waygate/gateway/router"

	// The per-route configs must compile in the data plane's router.
	_ "github.com/waygate/waygate/filters/ratelimit"
)

const rateLimitBase = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: api.default.svc.cluster.local, port: {number: 80}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: web.default.svc.cluster.local, port: {number: 80}}}]
`

const rateLimitPolicyYAML = `
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  hosts: [api.example.com]
  match: {pathPrefix: /v1}
  rateLimitService: 127.0.0.1:8081
  timeout: 250ms
  rules:
  - name: per-client
    by: clientIP
    local: {requests: 5, per: minute}
  - name: per-user
    by: jwtClaim
    claim: sub
    global: {requests: 100, per: hour}
`

func translateRateLimit(t *testing.T, docs ...string) (*Resources, []Warning, *istio.Config) {
	t.Helper()
	cfg, findings := istio.ParseDocuments("rl.yaml", []byte(strings.Join(docs, "\n---\n")))
	findings = append(findings, istio.Validate(cfg)...)
	for _, f := range findings {
		if f.Severity == istio.Error {
			t.Fatalf("finding: %v", f)
		}
	}
	res, warnings := Translate(cfg, Proxy{})
	return res, warnings, cfg
}

func TestRateLimitPolicyTranslation(t *testing.T) {
	res, warnings, cfg := translateRateLimit(t, rateLimitBase, rateLimitPolicyYAML)
	for _, w := range warnings {
		if w.Resource.Kind == "RateLimitPolicy" {
			t.Errorf("warning: %v", w)
		}
	}

	// The chain: rate limits after authn/authz, before fault.
	var hcm hcmv3.HttpConnectionManager
	if err := res.Listeners[0].FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range hcm.HttpFilters {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "envoy.filters.http.local_ratelimit,envoy.filters.http.ratelimit,envoy.filters.http.fault,envoy.filters.http.cors,envoy.filters.http.router" {
		t.Errorf("chain %s", got)
	}
	var global rlv3.RateLimit
	if err := hcm.HttpFilters[1].GetTypedConfig().UnmarshalTo(&global); err != nil {
		t.Fatal(err)
	}
	if global.Domain != "waygate" || global.GetRateLimitService().GetGrpcService().GetEnvoyGrpc().GetClusterName() != "outbound|8081||127.0.0.1" ||
		global.GetTimeout().AsDuration().Milliseconds() != 250 {
		t.Errorf("ratelimit filter %v", &global)
	}

	// The rate limit service's cluster.
	found := false
	for _, c := range res.Clusters {
		if c.Name == "outbound|8081||127.0.0.1" {
			found = c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] != nil
		}
	}
	if !found {
		t.Error("no HTTP/2 cluster for the rate limit service")
	}

	// Only api.example.com's routes carry the limits.
	rc := res.Routes[0]
	for _, vh := range rc.VirtualHosts {
		rt := vh.Routes[0]
		api := strings.HasPrefix(vh.Name, "api.example.com")
		per := rt.TypedPerFilterConfig[localRateLimitFilter]
		if (per != nil) != api || (len(rt.GetRoute().GetRateLimits()) > 0) != api {
			t.Errorf("vhost %s: local %v, rate_limits %v", vh.Name, per != nil, rt.GetRoute().GetRateLimits())
			continue
		}
		if !api {
			continue
		}
		var local localrlv3.LocalRateLimit
		if err := per.UnmarshalTo(&local); err != nil {
			t.Fatal(err)
		}
		if len(local.Descriptors) != 1 || local.Descriptors[0].TokenBucket.MaxTokens != 5 || local.Descriptors[0].TokenBucket.FillInterval.AsDuration().Seconds() != 60 {
			t.Errorf("local descriptors %v", local.Descriptors)
		}
		var entries []string
		for _, e := range local.Descriptors[0].Entries {
			entries = append(entries, e.Key+"="+e.Value)
		}
		if got := strings.Join(entries, ","); got != "waygate_rule=istio-system/edge/per-client,path_prefix=/v1,remote_address=" {
			t.Errorf("local entries %s", got)
		}
		acts := rt.GetRoute().GetRateLimits()[0].Actions
		if len(acts) != 3 || acts[2].GetMetadata().GetMetadataKey().GetPath()[1].GetKey() != "sub" {
			t.Errorf("global actions %v", acts)
		}
	}

	// The data plane's router accepts the route configuration.
	if _, err := router.Compile(rc); err != nil {
		t.Fatalf("router: %v", err)
	}

	// The service config derived from the same policies has the limit
	// where the descriptors lead.
	text := RateLimitServiceConfig(cfg)
	if _, err := rls.Parse("derived", text); err != nil {
		t.Fatalf("service config does not parse: %v\n%s", err, text)
	}
	for _, want := range []string{"domain: waygate", "value: istio-system/edge/per-user", "key: jwt_claim", "requests_per_unit: 100", "unit: hour"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("service config lacks %q:\n%s", want, text)
		}
	}
}

func TestRateLimitPolicySelection(t *testing.T) {
	other := strings.Replace(rateLimitPolicyYAML, "selector: {istio: ingressgateway}", "selector: {istio: eastwestgateway}", 1)
	res, _, _ := translateRateLimit(t, rateLimitBase, other)
	for _, vh := range res.Routes[0].VirtualHosts {
		if vh.Routes[0].TypedPerFilterConfig[localRateLimitFilter] != nil {
			t.Errorf("policy for another gateway applied to %s", vh.Name)
		}
	}
	byRef := strings.Replace(rateLimitPolicyYAML, "selector: {istio: ingressgateway}", "gateways: [default/gw]", 1)
	res, _, _ = translateRateLimit(t, rateLimitBase, byRef)
	n := 0
	for _, vh := range res.Routes[0].VirtualHosts {
		if vh.Routes[0].TypedPerFilterConfig[localRateLimitFilter] != nil {
			n++
		}
	}
	if n != 1 {
		t.Errorf("policy by gateway reference applied to %d virtual hosts, want 1", n)
	}
}

func TestWithRateLimitFilters(t *testing.T) {
	f := func(n string) *hcmv3.HttpFilter { return &hcmv3.HttpFilter{Name: n} }
	chain := []*hcmv3.HttpFilter{f("jwt"), f("rbac"), f(faultFilter), f(corsFilter), f(routerFilter)}
	got := withRateLimitFilters(chain, []*hcmv3.HttpFilter{f("local"), f("global")})
	var names []string
	for _, h := range got {
		names = append(names, h.Name)
	}
	if strings.Join(names, " ") != "jwt rbac local global "+faultFilter+" "+corsFilter+" "+routerFilter {
		t.Errorf("order %v", names)
	}
}
