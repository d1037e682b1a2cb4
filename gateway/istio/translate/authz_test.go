package translate

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/waygate/waygate/filters/authz"
	"github.com/waygate/waygate/filters/extauthz"
)

// httpFiltersOf returns the HTTP filters of the first HTTP connection
// manager of the listener named name.
func httpFiltersOf(t *testing.T, res *Resources, name string) []*hcmv3.HttpFilter {
	t.Helper()
	for _, l := range res.Listeners {
		if l.Name != name {
			continue
		}
		for _, fc := range l.FilterChains {
			for _, f := range fc.Filters {
				if f.Name != hcmFilter {
					continue
				}
				m := &hcmv3.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
					t.Fatal(err)
				}
				return m.HttpFilters
			}
		}
	}
	t.Fatalf("no HTTP connection manager in listener %s", name)
	return nil
}

func rbacConfigs(t *testing.T, fs []*hcmv3.HttpFilter) []*rbachttpv3.RBAC {
	t.Helper()
	var out []*rbachttpv3.RBAC
	for _, f := range fs {
		if f.Name != rbacFilter {
			continue
		}
		m := &rbachttpv3.RBAC{}
		if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestAuthzMatchesIstiod translates the policies istiod translated in
// the shared xDS sample and compares the RBAC filters field by field.
func TestAuthzMatchesIstiod(t *testing.T) {
	t.Chdir("testdata/authz-sample")
	data, err := os.ReadFile("istiod-rbac.txtpb")
	if err != nil {
		t.Fatal(err)
	}
	var want []*rbachttpv3.RBAC
	for _, section := range strings.Split(string(data), "\n---\n") {
		m := &rbachttpv3.RBAC{}
		if err := prototext.Unmarshal([]byte(section), m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	res, warnings := Translate(loadCase(t, "input.yaml"), Proxy{})
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	got := rbacConfigs(t, httpFiltersOf(t, res, "0.0.0.0_8080"))
	if len(got) != len(want) {
		t.Fatalf("%d RBAC filters, istiod has %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(want[i], got[i]) {
			t.Errorf("RBAC filter %d differs from istiod's.\nistiod:\n%s\nwaygate:\n%s", i, prototext.Format(want[i]), prototext.Format(got[i]))
		}
	}
}

// TestAuthzFilterOrder checks istiod's chain order: the authorization
// filters go first (after jwt_authn when there is one), CUSTOM, AUDIT,
// DENY, ALLOW, and the chain still ends with fault, cors, router.
func TestAuthzFilterOrder(t *testing.T) {
	t.Chdir("testdata/authz-scoping")
	res, _ := Translate(loadCase(t, "input.yaml"), Proxy{})
	fs := httpFiltersOf(t, res, "0.0.0.0_8080")
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	want := []string{rbacFilter, rbacFilter, rbacFilter, faultFilter, corsFilter, routerFilter}
	if !slices.Equal(names, want) {
		t.Fatalf("filters = %v, want %v", names, want)
	}
	rb := rbacConfigs(t, fs)
	if got := rb[0].GetRules().GetPolicies(); got["istio-ext-authz-sample-ext-authz-ns[istio-system]-policy[ext-authz]-rule[0]-deny-due-to-bad-CUSTOM-action"] == nil {
		t.Errorf("CUSTOM with an undefined provider: policies %v, want the bad-CUSTOM deny", keys(got))
	}
	if a := rb[1].GetRules().GetAction(); a.String() != "LOG" {
		t.Errorf("second filter action = %v, want LOG (AUDIT)", a)
	}
	if a := rb[2].GetRules().GetAction(); a.String() != "DENY" {
		t.Errorf("third filter action = %v, want DENY", a)
	}
	if n := len(rb[2].GetRules().GetPolicies()); n != 1 {
		t.Errorf("DENY policies = %v, want only deny-delete", keys(rb[2].GetRules().GetPolicies()))
	}
}

func TestWithAuthzFiltersAfterJWT(t *testing.T) {
	f := func(name string) *hcmv3.HttpFilter { return &hcmv3.HttpFilter{Name: name} }
	chain := []*hcmv3.HttpFilter{f("istio.metadata_exchange"), f(jwtFilterName), f(faultFilter), f(routerFilter)}
	got := withAuthzFilters(chain, []*hcmv3.HttpFilter{f("deny"), f("allow")})
	var names []string
	for _, x := range got {
		names = append(names, x.Name)
	}
	want := []string{"istio.metadata_exchange", jwtFilterName, "deny", "allow", faultFilter, routerFilter}
	if !slices.Equal(names, want) {
		t.Errorf("chain = %v, want %v", names, want)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestAuthzDeterministic checks an RBAC config with several policies
// marshals to the same bytes every time, so the listener's version does
// not change between pushes of an unchanged config.
func TestAuthzDeterministic(t *testing.T) {
	t.Chdir("testdata/authz-conditions")
	cfg := loadCase(t, "input.yaml")
	first, _ := Translate(cfg, Proxy{})
	for range 20 {
		again, _ := Translate(cfg, Proxy{})
		a, _ := proto.MarshalOptions{Deterministic: true}.Marshal(first.Listeners[0])
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(again.Listeners[0])
		if string(a) != string(b) {
			t.Fatal("listener bytes differ between two translations of the same config")
		}
	}
}

// TestAuthzCompilesInGateway compiles every RBAC filter the golden cases
// produce with the gateway's RBAC filter, so nothing the translator
// writes would be NACKed.
func TestAuthzCompilesInGateway(t *testing.T) {
	for _, dir := range []string{"authz-sample", "authz-allow-nothing", "authz-conditions", "authz-dry-run", "authz-scoping"} {
		t.Run(dir, func(t *testing.T) {
			t.Chdir("testdata/" + dir)
			res, _ := Translate(loadCase(t, "input.yaml"), Proxy{})
			rb := rbacConfigs(t, httpFiltersOf(t, res, "0.0.0.0_8080"))
			if len(rb) == 0 {
				t.Fatal("no RBAC filter")
			}
			for i, c := range rb {
				if _, err := authz.Compile(c); err != nil {
					t.Errorf("RBAC filter %d: %v", i, err)
				}
			}
		})
	}
}

// TestAuthzCustomProvider translates CUSTOM policies with the
// extension providers of istiod's builder tests and compares with the
// configs istiod generates for them (its testdata
// custom-http-provider-out{1,2}.yaml and custom-grpc-provider-out2.yaml,
// in istiod-*.json), then runs them in the gateway's filters.
func TestAuthzCustomProvider(t *testing.T) {
	t.Chdir("testdata/authz-custom")
	cfg := loadCase(t, "policies.yaml")
	httpProvider := &meshconfig.MeshConfig_ExtensionProvider{Name: "default", Provider: &meshconfig.MeshConfig_ExtensionProvider_EnvoyExtAuthzHttp{
		EnvoyExtAuthzHttp: &meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider{
			Service:                         "foo/my-custom-ext-authz.foo.svc.cluster.local",
			Port:                            9000,
			Timeout:                         durationpb.New(10 * time.Second),
			FailOpen:                        true,
			StatusOnError:                   "403",
			PathPrefix:                      "/check",
			IncludeRequestHeadersInCheck:    []string{"x-custom-id", "x-prefix-*", "*-suffix"},
			IncludeHeadersInCheck:           []string{"should-not-include-when-IncludeRequestHeadersInCheck-is-set"},
			IncludeAdditionalHeadersInCheck: map[string]string{"x-header-1": "value-1", "x-header-2": "value-2"},
			IncludeRequestBodyInCheck:       &meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationRequestBody{MaxRequestBytes: 2048, AllowPartialMessage: true, PackAsBytes: true},
			HeadersToUpstreamOnAllow:        []string{"Authorization", "x-prefix-*", "*-suffix"},
			HeadersToDownstreamOnDeny:       []string{"Set-cookie", "x-prefix-*", "*-suffix"},
			HeadersToDownstreamOnAllow:      []string{"Set-cookie", "x-prefix-*", "*-suffix"},
		}}}
	grpcProvider := &meshconfig.MeshConfig_ExtensionProvider{Name: "default", Provider: &meshconfig.MeshConfig_ExtensionProvider_EnvoyExtAuthzGrpc{
		EnvoyExtAuthzGrpc: &meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider{
			Service:                   "foo/my-custom-ext-authz.foo.svc.cluster.local",
			Port:                      9000,
			Timeout:                   durationpb.New(2 * time.Millisecond),
			FailOpen:                  true,
			StatusOnError:             "403",
			IncludeRequestBodyInCheck: &meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationRequestBody{MaxRequestBytes: 4096, AllowPartialMessage: true},
		}}}
	wantRBAC := &rbachttpv3.RBAC{}
	readJSON(t, "istiod-rbac.json", wantRBAC)
	for _, tc := range []struct {
		name     string
		provider *meshconfig.MeshConfig_ExtensionProvider
		want     string
	}{
		{"http", httpProvider, "istiod-ext-authz-http.json"},
		{"grpc", grpcProvider, "istiod-ext-authz-grpc.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, warnings := Translate(cfg, Proxy{ExtensionProviders: []*meshconfig.MeshConfig_ExtensionProvider{tc.provider}})
			if len(warnings) != 0 {
				t.Errorf("warnings: %v", warnings)
			}
			fs := httpFiltersOf(t, res, "0.0.0.0_8080")
			if len(fs) < 2 || fs[0].Name != rbacFilter || fs[1].Name != extAuthzFilter {
				t.Fatalf("chain starts %v, want rbac then ext_authz", fs)
			}
			rb := rbacConfigs(t, fs[:1])[0]
			if !proto.Equal(rb, wantRBAC) {
				t.Errorf("RBAC differs from istiod's:\n%s", prototext.Format(rb))
			}
			got := &extauthzv3.ExtAuthz{}
			if err := fs[1].GetTypedConfig().UnmarshalTo(got); err != nil {
				t.Fatal(err)
			}
			want := &extauthzv3.ExtAuthz{}
			readJSON(t, tc.want, want)
			if !proto.Equal(got, want) {
				t.Errorf("ext_authz differs from istiod's.\nistiod:\n%s\nwaygate:\n%s", prototext.Format(want), prototext.Format(got))
			}
			if _, err := authz.Compile(rb); err != nil {
				t.Errorf("the gateway refuses the RBAC filter: %v", err)
			}
			if _, err := extauthz.Compile(got); err != nil {
				t.Errorf("the gateway refuses the ext_authz filter: %v", err)
			}
		})
	}
	t.Run("unknown service", func(t *testing.T) {
		p := proto.Clone(grpcProvider).(*meshconfig.MeshConfig_ExtensionProvider)
		p.GetEnvoyExtAuthzGrpc().Service = "bar/nothing.bar.svc.cluster.local"
		res, warnings := Translate(cfg, Proxy{ExtensionProviders: []*meshconfig.MeshConfig_ExtensionProvider{p}})
		if len(warnings) != 2 || !strings.Contains(warnings[0].String(), "could not find service bar/nothing.bar.svc.cluster.local") {
			t.Errorf("warnings = %v", warnings)
		}
		rb := rbacConfigs(t, httpFiltersOf(t, res, "0.0.0.0_8080"))
		if len(rb) != 1 || rb[0].GetRules().GetPolicies()["istio-ext-authz-default-ns[istio-system]-policy[httpbin-1]-rule[0]-deny-due-to-bad-CUSTOM-action"] == nil {
			t.Errorf("want the bad-CUSTOM deny, got %v", rb)
		}
	})
}

func readJSON(t *testing.T, path string, m proto.Message) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(b, m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
