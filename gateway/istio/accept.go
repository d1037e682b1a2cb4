package istio

import "fmt"

// Accept turns a freshly loaded config and its load findings into what a
// source hands to the control plane: it validates cfg, drops every
// resource with an Error finding, and re-validates until what remains is
// consistent (dropping a broken Gateway makes the VirtualServices bound
// to it dangle). prev is the config Accept returned last time, or nil.
//
// A resource that was valid in prev and is now broken, or that vanished
// because its file no longer parses, keeps its previous version, with a
// Warning saying so: an edit in progress must not blackhole traffic, the
// same rule the data plane follows when it NACKs a bad update. A resource
// whose file was deleted (or, from Kubernetes, that was deleted) goes.
//
// The returned findings hold every finding, the errors of the dropped
// versions included, so they stay visible until fixed.
func Accept(prev, cfg *Config, findings []Finding) (*Config, []Finding) {
	findings = append(findings, Validate(cfg)...)
	valid := cfg.WithoutInvalid(findings)

	if prev != nil {
		unparsable := map[string]bool{} // files with a document that could not be identified
		invalid := map[Key]bool{}
		for _, f := range findings {
			if f.Severity != Error {
				continue
			}
			if f.Resource == (Key{}) {
				unparsable[f.File] = true
			} else {
				invalid[f.Resource] = true
			}
		}
		carry := prev.Filter(func(k Key) bool {
			if _, ok := valid.Origins[k]; ok {
				return false
			}
			_, present := cfg.Origins[k]
			switch {
			case present && invalid[k]:
				return true
			case !present && unparsable[prev.Origins[k].File]:
				return true
			}
			return false
		})
		for _, k := range carry.Keys() {
			o := carry.Origins[k]
			findings = append(findings, Finding{Severity: Warning, File: o.File, Line: o.Line, Resource: k,
				Message: "the current version has errors; the last valid version is still served"})
		}
		valid.merge(carry)
	}

	// Dropping resources can break references of the ones left: repeat
	// until a round finds no new error or drops nothing.
	seen := map[string]bool{}
	for _, f := range findings {
		seen[findingID(f)] = true
	}
	for {
		var fresh []Finding
		for _, f := range Validate(valid) {
			if id := findingID(f); !seen[id] {
				seen[id] = true
				fresh = append(fresh, f)
			}
		}
		findings = append(findings, fresh...)
		if !HasErrors(fresh) {
			return valid, findings
		}
		before := len(valid.Origins)
		valid = valid.WithoutInvalid(fresh)
		if len(valid.Origins) == before {
			return valid, findings
		}
	}
}

func findingID(f Finding) string { return fmt.Sprintf("%d %s", f.Severity, f) }
