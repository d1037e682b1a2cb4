package router

import (
	"sort"
	"strings"

	"github.com/waygate/waygate/filters"
)

// routeIndex narrows the routes a request must be checked against while
// keeping first-match-wins: every route sits in exactly one candidate list,
// lists hold route positions in ascending order, and match merges the
// lists that apply to a path by position, so the first route that matches
// is the one a linear scan would find.
//
// Case-sensitive exact paths are keyed by path. Prefixes that span the
// whole first segment ("/api/", "/api/v1") and path-separated prefixes are
// keyed by that segment. Prefixes that end inside the first segment
// ("/", "/ap") are keyed by their partial segment and looked up once per
// distinct partial length. Regexes are keyed like prefixes by their
// literal prefix. Everything else (case-insensitive matches, patterns
// without a literal leading "/") is always a candidate.
type routeIndex struct {
	exact       map[string][]int32
	seg         map[string][]int32
	partial     map[string][]int32
	partialLens []int
	always      []int32
}

func buildIndex(routes []*Route) *routeIndex {
	ix := &routeIndex{
		exact:   make(map[string][]int32),
		seg:     make(map[string][]int32),
		partial: make(map[string][]int32),
	}
	lens := map[int]bool{}
	for i, r := range routes {
		pos := int32(i)
		m := &r.m
		if m.ignoreCase {
			ix.always = append(ix.always, pos)
			continue
		}
		prefix := m.value
		switch m.kind {
		case pathExact:
			ix.exact[m.value] = append(ix.exact[m.value], pos)
			continue
		case pathRegex:
			// A regex is anchored at the start of the path, so its
			// literal prefix is a prefix every matching path has.
			prefix, _ = m.re.LiteralPrefix()
		}
		if !strings.HasPrefix(prefix, "/") {
			ix.always = append(ix.always, pos)
			continue
		}
		rest := prefix[1:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			ix.seg[rest[:j]] = append(ix.seg[rest[:j]], pos)
		} else if m.kind == pathSeparatedPrefix {
			ix.seg[rest] = append(ix.seg[rest], pos)
		} else {
			ix.partial[rest] = append(ix.partial[rest], pos)
			lens[len(rest)] = true
		}
	}
	for n := range lens {
		ix.partialLens = append(ix.partialLens, n)
	}
	sort.Ints(ix.partialLens)
	return ix
}

func (ix *routeIndex) match(routes []*Route, path, query string, req *filters.Request, conn *filters.Connection, md map[string]map[string]any, random uint64) *Route {
	var buf [8][]int32
	lists := buf[:0]
	if l := ix.exact[path]; len(l) > 0 {
		lists = append(lists, l)
	}
	if len(path) > 0 && path[0] == '/' {
		seg := path[1:]
		if j := strings.IndexByte(seg, '/'); j >= 0 {
			seg = seg[:j]
		}
		if l := ix.seg[seg]; len(l) > 0 {
			lists = append(lists, l)
		}
		for _, n := range ix.partialLens {
			if n > len(seg) {
				break
			}
			if l := ix.partial[seg[:n]]; len(l) > 0 {
				lists = append(lists, l)
			}
		}
	}
	if len(ix.always) > 0 {
		lists = append(lists, ix.always)
	}
	for {
		best := -1
		var bestPos int32
		for i, l := range lists {
			if len(l) > 0 && (best < 0 || l[0] < bestPos) {
				best, bestPos = i, l[0]
			}
		}
		if best < 0 {
			return nil
		}
		lists[best] = lists[best][1:]
		r := routes[bestPos]
		if r.m.matchPath(path) && r.m.matchRest(req, conn, md, query, random) {
			return r
		}
	}
}
