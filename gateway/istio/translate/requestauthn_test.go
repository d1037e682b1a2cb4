package translate

import (
	"os"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// jwtConfig is the jwt_authn filter config of a chain, nil without one.
func jwtConfig(t *testing.T, fs []*hcmv3.HttpFilter) *jwtauthnv3.JwtAuthentication {
	t.Helper()
	for _, f := range fs {
		if f.GetName() != jwtFilterName {
			continue
		}
		m := &jwtauthnv3.JwtAuthentication{}
		if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return nil
}

// TestJWTMatchesIstiod translates the RequestAuthentication istiod
// translated in the shared xDS sample and compares the jwt_authn filter
// field by field.
func TestJWTMatchesIstiod(t *testing.T) {
	t.Chdir("testdata/requestauthn-sample")
	data, err := os.ReadFile("istiod-jwt.txtpb")
	if err != nil {
		t.Fatal(err)
	}
	want := &jwtauthnv3.JwtAuthentication{}
	if err := prototext.Unmarshal(data, want); err != nil {
		t.Fatal(err)
	}
	res, warnings := Translate(loadCase(t, "input.yaml"), Proxy{})
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	fs := httpFiltersOf(t, res, "0.0.0.0_8080")
	got := jwtConfig(t, fs)
	if !proto.Equal(want, got) {
		t.Errorf("jwt_authn differs from istiod's.\nistiod:\n%s\nwaygate:\n%s", prototext.Format(want), prototext.Format(got))
	}
	if fs[0].GetName() != jwtFilterName {
		t.Errorf("first filter is %s, want jwt_authn ahead of the chain", fs[0].GetName())
	}
}

// TestJWTProvidersAndClusters checks the remote case: provider order,
// the requirement shape for several providers, and the JWKS clusters.
func TestJWTProvidersAndClusters(t *testing.T) {
	t.Chdir("testdata/requestauthn-remote")
	res, warnings := Translate(loadCase(t, "input.yaml"), Proxy{})
	if len(warnings) != 1 || warnings[0].Field != "spec.jwtRules[2]" {
		t.Errorf("warnings = %v, want one for the rule without keys", warnings)
	}
	cfg := jwtConfig(t, httpFiltersOf(t, res, "0.0.0.0_8080"))
	issuers := map[string]string{}
	for name, p := range cfg.GetProviders() {
		issuers[name] = p.GetIssuer()
	}
	want := map[string]string{"origins-0": "https://login.example.com", "origins-1": "internal", "origins-2": "lab"}
	if len(issuers) != len(want) {
		t.Fatalf("providers = %v, want %v", issuers, want)
	}
	for k, v := range want {
		if issuers[k] != v {
			t.Errorf("%s issuer = %q, want %q", k, issuers[k], v)
		}
	}
	any := cfg.GetRules()[0].GetRequires().GetRequiresAny().GetRequirements()
	if len(any) != 4 || any[3].GetRequiresAll() == nil || len(any[3].GetRequiresAll().GetRequirements()) != 3 {
		t.Fatalf("requirement = %v, want any [origins-0..2, all [...]]", cfg.GetRules()[0].GetRequires())
	}
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range res.Clusters {
		clusters[c.Name] = c
	}
	login := clusters["outbound|443||login.example.com"]
	if login == nil || login.GetType() != clusterv3.Cluster_STRICT_DNS || login.GetTransportSocket() == nil {
		t.Errorf("https JWKS cluster = %v, want STRICT_DNS with TLS", login)
	}
	if lab := clusters["outbound|9000||10.1.2.3"]; lab == nil || lab.GetType() != clusterv3.Cluster_STATIC || lab.GetTransportSocket() != nil {
		t.Errorf("IP JWKS cluster = %v, want STATIC plaintext", lab)
	}
	if c := clusters["outbound|8081||keys.internal"]; c == nil || c.GetType() != clusterv3.Cluster_STRICT_DNS {
		t.Errorf("ServiceEntry JWKS cluster = %v", c)
	}
	for _, gone := range []string{"outbound|443||reviews.example.com", "outbound|443||default.example.com"} {
		if clusters[gone] != nil {
			t.Errorf("%s built for a policy that does not apply", gone)
		}
	}
}
