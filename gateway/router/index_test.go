package router

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomTableYAML builds a virtual host of n routes mixing every path
// match kind over a small alphabet of segments, so that requests drawn from
// the same alphabet hit many overlapping routes.
func randomTableYAML(rng *rand.Rand, n int) string {
	segs := []string{"a", "ab", "abc", "b", "api", "v1", "x"}
	seg := func() string { return segs[rng.IntN(len(segs))] }
	var b strings.Builder
	b.WriteString("virtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n")
	for i := 0; i < n; i++ {
		var m string
		switch rng.IntN(9) {
		case 0:
			m = fmt.Sprintf("{path: /%s/%s}", seg(), seg())
		case 1:
			m = fmt.Sprintf("{prefix: /%s/}", seg())
		case 2:
			m = fmt.Sprintf("{prefix: /%s}", seg()[:1])
		case 3:
			m = fmt.Sprintf("{prefix: /%s/%s}", seg(), seg())
		case 4:
			m = fmt.Sprintf("{path_separated_prefix: /%s}", seg())
		case 5:
			m = fmt.Sprintf("{safe_regex: {regex: \"/%s/.*\"}}", seg())
		case 6:
			m = fmt.Sprintf("{prefix: /%s, case_sensitive: false}", strings.ToUpper(seg()))
		case 7:
			m = fmt.Sprintf("{prefix: /%s, headers: [{name: x-v, string_match: {exact: \"%d\"}}]}", seg(), rng.IntN(3))
		case 8:
			m = "{prefix: /}"
			if rng.IntN(4) != 0 {
				m = fmt.Sprintf("{path: /%s}", seg())
			}
		}
		fmt.Fprintf(&b, "  - {name: r%d, match: %s, route: {cluster: c}}\n", i, m)
	}
	return b.String()
}

func TestIndexAgreesWithLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"", "a", "ab", "abc", "abcd", "b", "api", "API", "v1", "x", "y"}
	for round := 0; round < 20; round++ {
		tbl := compileYAML(t, randomTableYAML(rng, 20+rng.IntN(200)))
		vh := tbl.VirtualHosts()[0]
		if vh.index == nil {
			t.Fatal("virtual host was not indexed")
		}
		for i := 0; i < 2000; i++ {
			var p strings.Builder
			for n := rng.IntN(4); n >= 0; n-- {
				p.WriteString("/" + segs[rng.IntN(len(segs))])
			}
			if rng.IntN(5) == 0 {
				p.WriteString("/")
			}
			if rng.IntN(5) == 0 {
				p.WriteString("?q=1")
			}
			req := newReq("GET", "h", p.String(), "x-v", fmt.Sprint(rng.IntN(3)))
			path, query := splitPath(req.Path)
			want := matchLinear(vh.routes, path, query, req, testConn, nil, 0)
			got := vh.match(req, testConn, nil, 0)
			if got != want {
				t.Fatalf("round %d path %q: index chose %s, linear scan %s", round, req.Path, routeName(got), routeName(want))
			}
		}
	}
}
