package translate

import "testing"

func TestExportedTo(t *testing.T) {
	for _, c := range []struct {
		exportTo []string
		ns, to   string
		want     bool
	}{
		{nil, "default", "istio-system", true},
		{[]string{"*"}, "default", "istio-system", true},
		{[]string{"."}, "default", "istio-system", false},
		{[]string{"."}, "istio-system", "istio-system", true},
		{[]string{"~"}, "istio-system", "istio-system", false},
		{[]string{"team-a", "istio-system"}, "default", "istio-system", true},
		{[]string{"team-a"}, "default", "istio-system", false},
		{[]string{"team-a"}, "default", "default", false},
	} {
		if got := exportedTo(c.exportTo, c.ns, c.to); got != c.want {
			t.Errorf("exportedTo(%q, %s, %s) = %v, want %v", c.exportTo, c.ns, c.to, got, c.want)
		}
	}
}
