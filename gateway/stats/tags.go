package stats

import (
	"sort"
	"strings"
)

// Tag is one name=value pair of a stat, a Prometheus label once exported.
type Tag struct {
	Name  string // Envoy's tag name, "envoy.cluster_name"
	Value string
}

// Envoy's well-known tag names, from source/common/config/well_known_names.h.
const (
	TagClusterName           = "envoy.cluster_name"
	TagHTTPConnManagerPrefix = "envoy.http_conn_manager_prefix"
	TagListenerAddress       = "envoy.listener_address"
	TagResponseCode          = "envoy.response_code"
	TagResponseCodeClass     = "envoy.response_code_class"
)

// span is a byte range [start, end) of a stat name that tag extraction
// removes.
type span struct{ start, end int }

// extract computes a stat's tags and tag-extracted name. Scope tags come
// with the spans of the name they cover; Envoy's default extractors then
// run on the full name for every tag the scope did not set. As in Envoy,
// every extractor matches against the original name and all matched spans
// are removed at the end.
func extract(name string, scopeTags []Tag, scopeSpans []span) meta {
	tags := append([]Tag(nil), scopeTags...)
	spans := append([]span(nil), scopeSpans...)
	has := func(n string) bool {
		for _, t := range tags {
			if t.Name == n {
				return true
			}
		}
		return false
	}
	add := func(n, v string, s span) {
		if !has(n) {
			tags = append(tags, Tag{n, v})
			spans = append(spans, s)
		}
	}
	// Envoy's order: response code, response code class, cluster name,
	// connection manager prefix, listener address.
	if v, s, ok := responseCode(name); ok {
		add(TagResponseCode, v, s)
	}
	if v, s, ok := responseCodeClass(name); ok {
		add(TagResponseCodeClass, v, s)
	}
	if v, s, ok := segmentAfter(name, "cluster."); ok && v != "" {
		add(TagClusterName, v, s)
	}
	if v, s, ok := listenerHTTPPrefix(name); ok {
		add(TagHTTPConnManagerPrefix, v, s)
	} else if v, s, ok := segmentAfter(name, "http."); ok {
		add(TagHTTPConnManagerPrefix, v, s)
	}
	if v, s, ok := listenerAddress(name); ok {
		add(TagListenerAddress, v, s)
	}
	return meta{name: name, extracted: cut(name, spans), tags: tags}
}

// cut removes spans from name, skipping any that overlaps one already cut.
func cut(name string, spans []span) string {
	if len(spans) == 0 {
		return name
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var b strings.Builder
	pos := 0
	for _, s := range spans {
		if s.start < pos {
			continue
		}
		b.WriteString(name[pos:s.start])
		pos = s.end
	}
	b.WriteString(name[pos:])
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// responseCode follows Envoy's `_rq(_(\d{3}))$`: upstream_rq_503 becomes
// upstream_rq with response code 503.
func responseCode(name string) (string, span, bool) {
	n := len(name)
	if n < 7 || !isDigit(name[n-3]) || !isDigit(name[n-2]) || !isDigit(name[n-1]) || !strings.HasSuffix(name[:n-3], "_rq_") {
		return "", span{}, false
	}
	return name[n-3:], span{n - 4, n}, true
}

// responseCodeClass follows Envoy's `_rq_(\d)xx$`: downstream_rq_2xx
// becomes downstream_rq_xx with response code class 2.
func responseCodeClass(name string) (string, span, bool) {
	n := len(name)
	if n < 7 || !strings.HasSuffix(name, "xx") || !isDigit(name[n-3]) || !strings.HasSuffix(name[:n-3], "_rq_") {
		return "", span{}, false
	}
	return name[n-3 : n-2], span{n - 3, n - 2}, true
}

// segmentAfter follows Envoy's `^<prefix>((.*?)\.)`: the value is the text
// up to the first dot after prefix, and the span covers that dot too.
func segmentAfter(name, prefix string) (string, span, bool) {
	if !strings.HasPrefix(name, prefix) {
		return "", span{}, false
	}
	i := strings.IndexByte(name[len(prefix):], '.')
	if i < 0 {
		return "", span{}, false
	}
	return name[len(prefix) : len(prefix)+i], span{len(prefix), len(prefix) + i + 1}, true
}

// listenerHTTPPrefix follows Envoy's `^listener(?=\.).*?\.http\.((.*?)\.)`:
// listener.<address>.http.<stat_prefix>.<stat>.
func listenerHTTPPrefix(name string) (string, span, bool) {
	if !strings.HasPrefix(name, "listener.") {
		return "", span{}, false
	}
	i := strings.Index(name[len("listener"):], ".http.")
	if i < 0 {
		return "", span{}, false
	}
	start := len("listener") + i + len(".http.")
	j := strings.IndexByte(name[start:], '.')
	if j < 0 {
		return "", span{}, false
	}
	return name[start : start+j], span{start, start + j + 1}, true
}

// listenerAddress follows Envoy's
// `^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)`:
// an IPv4 address and port with "_" for ":" (0.0.0.0_8080), or a
// bracketed IPv6 one, ending at the last dot the character class allows.
func listenerAddress(name string) (string, span, bool) {
	const p = "listener."
	if !strings.HasPrefix(name, p) {
		return "", span{}, false
	}
	rest := name[len(p):]
	v4 := func(c byte) bool { return c == '_' || c == '.' || isDigit(c) }
	v6 := func(c byte) bool {
		return c == '_' || c == '[' || c == ']' || isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
	}
	for _, in := range []func(byte) bool{v4, v6} {
		n := 0
		for n < len(rest) && in(rest[n]) {
			n++
		}
		// The class is greedy and backtracks to the last dot it can end on.
		for k := n; k >= 0; k-- {
			if k < len(rest) && rest[k] == '.' {
				return rest[:k], span{len(p), len(p) + k + 1}, true
			}
		}
	}
	return "", span{}, false
}

// promName is Envoy's Prometheus name for a tag-extracted stat name:
// "envoy_" and the name with every character outside [a-zA-Z0-9_] turned
// into "_". Metrics a Wasm plugin defines (wasmcustom.<name>) keep the
// plugin's own name, without the prefixes, as Envoy exports them: that
// is how Istio's stats plugin yields istio_requests_total.
func promName(s string) string {
	if rest, ok := strings.CutPrefix(s, "wasmcustom."); ok {
		return sanitize(rest)
	}
	return "envoy_" + sanitize(s)
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			b[i] = '_'
		}
	}
	return string(b)
}
