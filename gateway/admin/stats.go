package admin

import (
	"fmt"
	"net/http"
	"regexp"

	"github.com/prometheus/common/expfmt"

	"github.com/waygate/waygate/gateway/stats"
)

// stats serves /stats with Envoy's ?filter=<regex>, ?usedonly and
// ?format=json|prometheus.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	filter, ok := statsFilter(w, r)
	if !ok {
		return
	}
	opts := statsOptions(r)
	switch f := r.URL.Query().Get("format"); f {
	case "json":
		w.Header().Set("Content-Type", "application/json")
		s.opts.Stats.WriteJSON(w, filter, opts...)
	case "prometheus":
		s.writePrometheus(w, filter, opts)
	case "", "text":
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		s.opts.Stats.WriteText(w, filter, opts...)
	default:
		text(w, http.StatusBadRequest, fmt.Sprintf("usage: /stats?format=(json|prometheus|text); unknown format %q\n", f))
	}
}

func (s *Server) prometheus(w http.ResponseWriter, r *http.Request) {
	if filter, ok := statsFilter(w, r); ok {
		s.writePrometheus(w, filter, statsOptions(r))
	}
}

func statsOptions(r *http.Request) []stats.Option {
	if _, ok := r.URL.Query()["usedonly"]; ok {
		return []stats.Option{stats.UsedOnly()}
	}
	return nil
}

func (s *Server) writePrometheus(w http.ResponseWriter, filter *regexp.Regexp, opts []stats.Option) {
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	if err := s.opts.Stats.WritePrometheus(w, filter, opts...); err != nil {
		// The rest was written; a duplicate series is a naming clash
		// between stats, worth a log line but not a failed scrape.
		s.opts.Log.Warn("prometheus exposition incomplete", "error", err)
	}
}

func statsFilter(w http.ResponseWriter, r *http.Request) (*regexp.Regexp, bool) {
	v := r.URL.Query().Get("filter")
	if v == "" {
		return nil, true
	}
	re, err := regexp.Compile(v)
	if err != nil {
		text(w, http.StatusBadRequest, fmt.Sprintf("Invalid regex: %v\n", err))
		return nil, false
	}
	return re, true
}
