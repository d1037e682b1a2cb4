package istio

import (
	"strings"
	"testing"
)

const rateLimitPolicyDoc = `
apiVersion: waygate.dev/v1alpha1
kind: RateLimitPolicy
metadata:
  name: edge
  namespace: istio-system
spec:
  selector: {istio: ingressgateway}
  hosts: ["*.example.com"]
  match: {pathPrefix: /api}
  rateLimitService: 127.0.0.1:8081
  rules:
  - name: per-client
    by: clientIP
    local: {requests: 5, per: minute}
  - by: jwtClaim
    claim: sub
    global: {requests: 100, per: hour}
`

func TestParseRateLimitPolicy(t *testing.T) {
	cfg, findings := ParseDocuments("rl.yaml", []byte(rateLimitPolicyDoc))
	if len(findings) > 0 {
		t.Fatalf("findings: %v", findings)
	}
	if len(cfg.RateLimitPolicies) != 1 {
		t.Fatalf("policies: %d", len(cfg.RateLimitPolicies))
	}
	p := cfg.RateLimitPolicies[0]
	if p.Namespace != "istio-system" || p.Spec.Rules[0].Local.Requests != 5 || p.Spec.Rules[1].Claim != "sub" || p.Spec.Match.PathPrefix != "/api" {
		t.Errorf("decoded %+v", p.Spec)
	}
	if f := Validate(cfg); len(f) != 0 {
		t.Errorf("validate: %v", f)
	}
	if keys := cfg.Keys(); len(keys) != 1 || keys[0].Kind != "RateLimitPolicy" {
		t.Errorf("keys %v", keys)
	}
}

func TestRateLimitPolicyFindings(t *testing.T) {
	head := "apiVersion: waygate.dev/v1alpha1\nkind: RateLimitPolicy\nmetadata: {name: p}\n"
	tests := []struct {
		name, doc, path, msg string
		line                 int
	}{
		{"unknown field", head + "spec:\n  rules:\n  - by: clientIP\n    locl: {requests: 1, per: second}\n", "spec.rules[0].locl", `unknown field "locl"`, 7},
		{"unknown kind", "apiVersion: waygate.dev/v1alpha1\nkind: RatePolicy\nmetadata: {name: p}\n", "kind", "known kinds are RateLimitPolicy", 2},
		{"wrong version", "apiVersion: waygate.dev/v1\nkind: RateLimitPolicy\nmetadata: {name: p}\n", "apiVersion", "use waygate.dev/v1alpha1", 1},
		{"no rules", head + "spec: {hosts: [a.example]}\n", "spec.rules", "at least one rule", 0},
		{"bad by", head + "spec:\n  rules:\n  - by: cookie\n    local: {requests: 1, per: second}\n", "spec.rules[0].by", `"cookie" is not one of`, 6},
		{"header missing", head + "spec:\n  rules:\n  - by: header\n    local: {requests: 1, per: second}\n", "spec.rules[0].header", "required when by is header", 0},
		{"local and global", head + "spec:\n  rateLimitService: rls:8081\n  rules:\n  - local: {requests: 1, per: second}\n    global: {requests: 1, per: second}\n", "spec.rules[0]", "exactly one of local and global", 0},
		{"bad per", head + "spec:\n  rules:\n  - local: {requests: 1, per: fortnight}\n", "spec.rules[0].local.per", "neither a unit", 0},
		{"short per", head + "spec:\n  rules:\n  - local: {requests: 1, per: 10ms}\n", "spec.rules[0].local.per", "50ms minimum", 0},
		{"global needs service", head + "spec:\n  rules:\n  - global: {requests: 1, per: minute}\n", "spec.rateLimitService", "required by global rules", 0},
		{"global unit", head + "spec:\n  rateLimitService: rls:8081\n  rules:\n  - global: {requests: 1, per: 1m}\n", "spec.rules[0].global.per", "not one of second", 0},
		{"bad service", head + "spec:\n  rateLimitService: rls\n  rules:\n  - global: {requests: 1, per: minute}\n", "spec.rateLimitService", "want host:port", 0},
		{"path prefix", head + "spec:\n  match: {pathPrefix: api}\n  rules:\n  - local: {requests: 1, per: second}\n", "spec.match.pathPrefix", "must start with /", 0},
		{"missing gateway", head + "spec:\n  gateways: [gw]\n  rules:\n  - local: {requests: 1, per: second}\n", "spec.gateways[0]", "no Gateway default/gw", 0},
		{"duplicate rule names", head + "spec:\n  rules:\n  - {name: a, local: {requests: 1, per: second}}\n  - {name: a, local: {requests: 1, per: second}}\n", "spec.rules[1].name", "must be unique", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, findings := ParseDocuments("rl.yaml", []byte(tt.doc))
			findings = append(findings, Validate(cfg)...)
			for _, f := range findings {
				if f.Path == tt.path && strings.Contains(f.Message, tt.msg) {
					if tt.line != 0 && f.Line != tt.line {
						t.Errorf("line %d, want %d", f.Line, tt.line)
					}
					if f.File != "rl.yaml" {
						t.Errorf("file %q", f.File)
					}
					return
				}
			}
			t.Errorf("no finding at %s containing %q; got %v", tt.path, tt.msg, findings)
		})
	}
}
