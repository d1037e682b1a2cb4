package rls

import (
	"strings"
	"testing"
)

const sample = `
domain: edge
descriptors:
- key: remote_address
  rate_limit: {unit: minute, requests_per_unit: 5}
- key: generic_key
  value: api
  descriptors:
  - key: user
    value: admin
    rate_limit: {unit: second, requests_per_unit: 100}
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 10, name: per-user}
  - key: path
    value: /static/*
    rate_limit: {unlimited: true}
- key: header_match
  value: shadowed
  shadow_mode: true
  rate_limit: {unit: second, requests_per_unit: 1}
---
domain: other
descriptors:
- key: k
  rate_limit: {unit: day, requests_per_unit: 1, unit_multiplier: 2}
`

func TestFind(t *testing.T) {
	cfg, err := Parse("sample.yaml", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		domain    string
		entries   []entry
		perUnit   uint32
		unlimited bool
		shadow    bool
		none      bool
	}{
		{name: "wildcard value", domain: "edge", entries: []entry{{"remote_address", "10.0.0.1"}}, perUnit: 5},
		{name: "exact nested", domain: "edge", entries: []entry{{"generic_key", "api"}, {"user", "admin"}}, perUnit: 100},
		{name: "nested wildcard", domain: "edge", entries: []entry{{"generic_key", "api"}, {"user", "bob"}}, perUnit: 10},
		{name: "prefix value", domain: "edge", entries: []entry{{"generic_key", "api"}, {"path", "/static/a.css"}}, unlimited: true},
		{name: "prefix miss", domain: "edge", entries: []entry{{"generic_key", "api"}, {"path", "/api"}}, none: true},
		{name: "stops early has no limit", domain: "edge", entries: []entry{{"generic_key", "api"}}, none: true},
		{name: "unknown value", domain: "edge", entries: []entry{{"generic_key", "web"}}, none: true},
		{name: "too deep", domain: "edge", entries: []entry{{"remote_address", "1"}, {"x", "y"}}, none: true},
		{name: "shadow", domain: "edge", entries: []entry{{"header_match", "shadowed"}}, perUnit: 1, shadow: true},
		{name: "unknown domain", domain: "nope", entries: []entry{{"remote_address", "1"}}, none: true},
		{name: "second document", domain: "other", entries: []entry{{"k", "v"}}, perUnit: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, shadow := cfg.find(tt.domain, tt.entries)
			if tt.none {
				if l != nil {
					t.Fatalf("limit %+v, want none", l)
				}
				return
			}
			if l == nil {
				t.Fatal("no limit")
			}
			if l.perUnit != tt.perUnit || l.unlimited != tt.unlimited || shadow != tt.shadow {
				t.Errorf("got %d unlimited=%v shadow=%v, want %d %v %v", l.perUnit, l.unlimited, shadow, tt.perUnit, tt.unlimited, tt.shadow)
			}
		})
	}
	if l, _ := cfg.find("other", []entry{{"k", "v"}}); l.window.Hours() != 48 {
		t.Errorf("unit_multiplier window = %v, want 48h", l.window)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"no domain", "descriptors: [{key: a}]", "domain: must not be empty"},
		{"no key", "domain: d\ndescriptors: [{value: a}]", "descriptors[0].key"},
		{"bad unit", "domain: d\ndescriptors: [{key: a, rate_limit: {unit: fortnight, requests_per_unit: 1}}]", "descriptors[0].rate_limit.unit"},
		{"unknown field", "domain: d\ndescriptors: [{key: a, rate: 1}]", "field rate not found"},
		{"nested error path", "domain: d\ndescriptors: [{key: a, descriptors: [{key: b, rate_limit: {unit: x}}]}]", "descriptors[0].descriptors[0].rate_limit.unit"},
		{"duplicate", "domain: d\ndescriptors: [{key: a, value: b}, {key: a, value: b}]", "duplicate descriptor"},
		{"duplicate domain", "domain: d\n---\ndomain: d\n", "defined twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
