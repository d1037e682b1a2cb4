package stats

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
)

// Quantiles are the percentiles Envoy's /stats prints for histograms.
var Quantiles = []float64{0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100}

type textLine struct {
	name  string
	value string
}

// scalars returns the counters and gauges matching filter, sorted by name
// as Envoy's /stats lists them together.
func (s *Store) scalars(q query) []textLine {
	var lines []textLine
	for _, c := range collect(&s.counters, q.counter) {
		lines = append(lines, textLine{c.name, strconv.FormatUint(c.Value(), 10)})
	}
	for _, g := range collect(&s.gauges, q.gauge) {
		lines = append(lines, textLine{g.name, strconv.FormatInt(g.Value(), 10)})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].name < lines[j].name })
	return lines
}

// WriteText writes the stats whose name matches filter (all when nil) in
// the form of Envoy's /stats: "name: value" lines sorted by name, then
// each histogram as its percentiles,
//
//	cluster.x.upstream_rq_time: P0(nan,1) P25(nan,2.5) ... P100(nan,10)
//
// Envoy shows interval and cumulative values; Waygate keeps cumulative
// ones only, so the interval is always "nan". A histogram with no values
// reads "No recorded values", as in Envoy.
func (s *Store) WriteText(w io.Writer, filter *regexp.Regexp, opts ...Option) error {
	q := newQuery(filter, opts)
	bw := bufio.NewWriter(w)
	for _, l := range s.scalars(q) {
		bw.WriteString(l.name)
		bw.WriteString(": ")
		bw.WriteString(l.value)
		bw.WriteByte('\n')
	}
	for _, h := range collect(&s.histograms, q.histogram) {
		snap := h.Snapshot()
		bw.WriteString(h.name)
		bw.WriteString(": ")
		if snap.Count == 0 {
			bw.WriteString("No recorded values\n")
			continue
		}
		for i, q := range Quantiles {
			if i > 0 {
				bw.WriteByte(' ')
			}
			bw.WriteByte('P')
			bw.WriteString(strconv.FormatFloat(q, 'f', -1, 64))
			bw.WriteString("(nan,")
			bw.WriteString(strconv.FormatFloat(snap.Quantile(q/100), 'g', 6, 64))
			bw.WriteByte(')')
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteJSON writes the stats matching filter as Envoy's /stats?format=json:
// {"stats":[{"name":..,"value":..},...,{"histograms":{...}}]}.
func (s *Store) WriteJSON(w io.Writer, filter *regexp.Regexp, opts ...Option) error {
	q := newQuery(filter, opts)
	type value struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	}
	type quantileValue struct {
		Interval   *float64 `json:"interval"`
		Cumulative *float64 `json:"cumulative"`
	}
	type computed struct {
		Name   string          `json:"name"`
		Values []quantileValue `json:"values"`
	}
	type histograms struct {
		Supported []float64  `json:"supported_quantiles"`
		Computed  []computed `json:"computed_quantiles"`
	}
	var out struct {
		Stats []any `json:"stats"`
	}
	out.Stats = []any{}
	for _, l := range s.scalars(q) {
		out.Stats = append(out.Stats, value{l.name, json.RawMessage(l.value)})
	}
	if hs := collect(&s.histograms, q.histogram); len(hs) > 0 {
		h := histograms{Supported: Quantiles}
		for _, hist := range hs {
			snap := hist.Snapshot()
			c := computed{Name: hist.name}
			for _, q := range Quantiles {
				var qv quantileValue
				if x := snap.Quantile(q / 100); !math.IsNaN(x) {
					qv.Cumulative = &x
				}
				c.Values = append(c.Values, qv)
			}
			h.Computed = append(h.Computed, c)
		}
		out.Stats = append(out.Stats, map[string]histograms{"histograms": h})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}
