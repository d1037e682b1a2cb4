package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/waygate/waygate/conformance/backend"
)

// mismatch returns why o does not look like e, or "" when it does. The
// reason reads as what was wanted and what came instead.
func (e *Expect) mismatch(o outcome) string {
	if e == nil {
		return ""
	}
	if e.Error {
		if o.err == nil {
			return fmt.Sprintf("want the exchange to fail, got status %d", o.status)
		}
		return ""
	}
	if o.err != nil {
		return "exchange failed: " + o.err.Error()
	}
	if e.Status != 0 && o.status != e.Status {
		return fmt.Sprintf("status %d, want %d", o.status, e.Status)
	}
	if e.Proto != "" && o.proto != e.Proto {
		return fmt.Sprintf("protocol %s, want %s", o.proto, e.Proto)
	}
	if why := headersMismatch(http.Header(o.header).Get, e.Headers, e.AbsentHeaders, "response header"); why != "" {
		return why
	}
	for _, frag := range e.Body {
		if !strings.Contains(string(o.body), frag) {
			return fmt.Sprintf("body lacks %q: %s", frag, snippet(o.body))
		}
	}
	if e.Echo != nil {
		if why := e.Echo.mismatch(o.body); why != "" {
			return why
		}
	}
	if d := e.Duration; d != nil {
		if o.took < time.Duration(d.Min) || (d.Max > 0 && o.took > time.Duration(d.Max)) {
			return fmt.Sprintf("took %v, want %v-%v", o.took.Round(time.Millisecond), time.Duration(d.Min), time.Duration(d.Max))
		}
	}
	return ""
}

func (e *EchoExpect) mismatch(body []byte) string {
	var echo backend.Echo
	if err := json.Unmarshal(body, &echo); err != nil {
		return "the body is not the echo backend's JSON: " + snippet(body)
	}
	for _, f := range [][3]string{
		{"service", e.Service, echo.Service},
		{"version", e.Version, echo.Version},
		{"path", e.Path, echo.Path},
		{"host", e.Host, echo.Host},
		{"method", e.Method, echo.Method},
	} {
		if f[1] != "" && f[1] != f[2] {
			return fmt.Sprintf("the backend saw %s %q, want %q", f[0], f[2], f[1])
		}
	}
	get := func(k string) string { return echo.Headers[strings.ToLower(k)] }
	return headersMismatch(get, e.Headers, e.AbsentHeaders, "the backend saw header")
}

// headersMismatch checks wanted values ("*": present with any value) and
// absent names against get.
func headersMismatch(get func(string) string, want map[string]string, absent []string, what string) string {
	for _, k := range sortedKeys(want) {
		v, got := want[k], get(k)
		switch {
		case got == "":
			return fmt.Sprintf("%s %s missing, want %q", what, k, v)
		case v != "*" && got != v:
			return fmt.Sprintf("%s %s: %q, want %q", what, k, got, v)
		}
	}
	for _, k := range absent {
		if got := get(k); got != "" {
			return fmt.Sprintf("%s %s: %q, want it absent", what, k, got)
		}
	}
	return ""
}

// snippet shortens a body for a failure message.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// label names a share for the table from what it matches.
func (e *Expect) label() string {
	var parts []string
	if e.Error {
		parts = append(parts, "error")
	}
	if e.Status != 0 {
		parts = append(parts, fmt.Sprintf("status %d", e.Status))
	}
	for _, k := range sortedKeys(e.Headers) {
		parts = append(parts, k+"="+e.Headers[k])
	}
	for _, b := range e.Body {
		parts = append(parts, fmt.Sprintf("body~%q", b))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}
