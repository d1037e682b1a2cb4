package rls

import "testing"

// FuzzParse feeds config text to the parser: it must return a config or
// an error, never panic, and a parsed config must answer lookups.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("domain: d\ndescriptors: [{key: a, value: b*, rate_limit: {unit: second, requests_per_unit: 1}}]"))
	f.Add([]byte("---\n---\ndomain: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		for d := range cfg.domains {
			cfg.find(d, []entry{{"a", "b"}, {"remote_address", "10.0.0.1"}})
		}
	})
}
