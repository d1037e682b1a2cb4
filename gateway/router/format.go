package router

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
)

// fmtOp is one Envoy command operator usable in header values
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage#command-operators).
type fmtOp uint8

const (
	opLiteral fmtOp = iota
	opRemoteAddr
	opRemoteAddrNoPort
	opRemotePort
	opLocalAddr
	opLocalAddrNoPort
	opLocalPort
	opReq
	opResp
	opProtocol
	opHostname
	opStartTime
	opUpstreamHost
	opUpstreamCluster
	opServerName
	opResponseCode
)

// operators maps command names to ops, and says whether they take an
// argument.
var operators = map[string]struct {
	op  fmtOp
	arg bool
}{
	"DOWNSTREAM_REMOTE_ADDRESS":              {opRemoteAddr, false},
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": {opRemoteAddrNoPort, false},
	"DOWNSTREAM_REMOTE_PORT":                 {opRemotePort, false},
	"DOWNSTREAM_LOCAL_ADDRESS":               {opLocalAddr, false},
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":  {opLocalAddrNoPort, false},
	"DOWNSTREAM_LOCAL_PORT":                  {opLocalPort, false},
	"REQ":                                    {opReq, true},
	"RESP":                                   {opResp, true},
	"PROTOCOL":                               {opProtocol, false},
	"HOSTNAME":                               {opHostname, false},
	"START_TIME":                             {opStartTime, false},
	"UPSTREAM_HOST":                          {opUpstreamHost, false},
	"UPSTREAM_REMOTE_ADDRESS":                {opUpstreamHost, false},
	"UPSTREAM_CLUSTER":                       {opUpstreamCluster, false},
	"REQUESTED_SERVER_NAME":                  {opServerName, false},
	"RESPONSE_CODE":                          {opResponseCode, false},
}

type fmtSeg struct {
	op     fmtOp
	text   string // literal text, or the START_TIME format
	key    matcher.HeaderKey
	alt    matcher.HeaderKey
	hasAlt bool
	maxLen int
	tf     []timeSpec
}

// format is a compiled header value: literal text and command operators.
type format struct {
	segs    []fmtSeg
	literal bool // the whole value is segs[0].text (or empty)
}

// fmtContext is what the operators read.
type fmtContext struct {
	req  *filters.Request
	conn *filters.Connection
	info *filters.StreamInfo
	resp *filters.Response
}

var hostname = func() string {
	h, _ := os.Hostname()
	return h
}()

// compileFormat parses Envoy's substitution syntax: %NAME%, %NAME(arg)%,
// %NAME(arg):N% and the %% escape. An unknown operator or a stray % is an
// error, as Envoy rejects them.
func compileFormat(s string) (format, error) {
	var f format
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.segs = append(f.segs, fmtSeg{op: opLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			lit.WriteByte('%')
			i += 2
			continue
		}
		seg, n, err := parseOperator(s[i:])
		if err != nil {
			return f, fmt.Errorf("%q at position %d: %w", s, i, err)
		}
		flush()
		f.segs = append(f.segs, seg)
		i += n
	}
	flush()
	f.literal = len(f.segs) == 0 || (len(f.segs) == 1 && f.segs[0].op == opLiteral)
	return f, nil
}

// parseOperator parses one operator at the start of s (which begins with
// '%') and returns its length.
func parseOperator(s string) (fmtSeg, int, error) {
	i := 1
	for i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
		i++
	}
	name := s[1:i]
	if name == "" {
		return fmtSeg{}, 0, fmt.Errorf("a %% must start a command operator such as %%REQ(x-foo)%% or be escaped as %%%%")
	}
	var arg string
	hasArg := false
	if i < len(s) && s[i] == '(' {
		end := strings.IndexByte(s[i:], ')')
		if end < 0 {
			return fmtSeg{}, 0, fmt.Errorf("%s: missing )", name)
		}
		arg, hasArg = s[i+1:i+end], true
		i += end + 1
	}
	maxLen := 0
	if i < len(s) && s[i] == ':' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(s[i+1 : j])
		if err != nil || n <= 0 {
			return fmtSeg{}, 0, fmt.Errorf("%s: length after : must be a positive number", name)
		}
		maxLen, i = n, j
	}
	if i >= len(s) || s[i] != '%' {
		return fmtSeg{}, 0, fmt.Errorf("%s: missing closing %%", name)
	}
	i++
	spec, ok := operators[name]
	if !ok {
		return fmtSeg{}, 0, fmt.Errorf("unknown command operator %%%s%%; supported: DOWNSTREAM_REMOTE_ADDRESS[_WITHOUT_PORT], DOWNSTREAM_LOCAL_ADDRESS[_WITHOUT_PORT], DOWNSTREAM_REMOTE_PORT, DOWNSTREAM_LOCAL_PORT, REQ(h), RESP(h), PROTOCOL, HOSTNAME, START_TIME, UPSTREAM_HOST, UPSTREAM_CLUSTER, REQUESTED_SERVER_NAME, RESPONSE_CODE", name)
	}
	seg := fmtSeg{op: spec.op, maxLen: maxLen}
	switch {
	case spec.op == opStartTime:
		if hasArg && arg != "" {
			tf, err := compileTimeFormat(arg)
			if err != nil {
				return fmtSeg{}, 0, fmt.Errorf("START_TIME(%s): %w", arg, err)
			}
			seg.tf = tf
		}
	case spec.arg:
		if !hasArg || arg == "" {
			return fmtSeg{}, 0, fmt.Errorf("%s needs a header name, as in %%%s(x-foo)%%", name, name)
		}
		main, alt, hasAlt := strings.Cut(arg, "?")
		seg.key = matcher.NewHeaderKey(main)
		if hasAlt {
			seg.alt, seg.hasAlt = matcher.NewHeaderKey(alt), true
		}
	case hasArg:
		return fmtSeg{}, 0, fmt.Errorf("%s takes no argument", name)
	}
	return seg, i, nil
}

// render evaluates the value for one exchange.
func (f *format) render(c *fmtContext) string {
	if f.literal {
		if len(f.segs) == 0 {
			return ""
		}
		return f.segs[0].text
	}
	var b strings.Builder
	for i := range f.segs {
		b.WriteString(f.segs[i].render(c))
	}
	return b.String()
}

func (s *fmtSeg) render(c *fmtContext) string {
	var v string
	switch s.op {
	case opLiteral:
		return s.text
	case opRemoteAddr:
		if c.conn != nil && c.conn.RemoteAddr.IsValid() {
			v = c.conn.RemoteAddr.String()
		}
	case opRemoteAddrNoPort:
		if c.conn != nil && c.conn.RemoteAddr.IsValid() {
			v = c.conn.RemoteAddr.Addr().String()
		}
	case opRemotePort:
		if c.conn != nil && c.conn.RemoteAddr.IsValid() {
			v = strconv.Itoa(int(c.conn.RemoteAddr.Port()))
		}
	case opLocalAddr:
		if c.conn != nil && c.conn.LocalAddr.IsValid() {
			v = c.conn.LocalAddr.String()
		}
	case opLocalAddrNoPort:
		if c.conn != nil && c.conn.LocalAddr.IsValid() {
			v = c.conn.LocalAddr.Addr().String()
		}
	case opLocalPort:
		if c.conn != nil && c.conn.LocalAddr.IsValid() {
			v = strconv.Itoa(int(c.conn.LocalAddr.Port()))
		}
	case opReq:
		if c.req != nil {
			var ok bool
			if v, ok = s.key.First(c.req); !ok && s.hasAlt {
				v, _ = s.alt.First(c.req)
			}
		}
	case opResp:
		if c.resp != nil {
			if v = c.resp.Header.Get(s.key.Canonical()); v == "" && s.hasAlt {
				v = c.resp.Header.Get(s.alt.Canonical())
			}
		}
	case opProtocol:
		if c.req != nil {
			v = c.req.Protocol
		}
	case opHostname:
		v = hostname
	case opStartTime:
		if c.info != nil && !c.info.Start.IsZero() {
			v = formatTime(c.info.Start.UTC(), s.tf)
		}
	case opUpstreamHost:
		if c.info != nil {
			v = c.info.UpstreamHost
		}
	case opUpstreamCluster:
		if c.info != nil {
			v = c.info.UpstreamCluster
		}
	case opServerName:
		if c.conn != nil && c.conn.TLS != nil {
			v = c.conn.TLS.ServerName
		}
	case opResponseCode:
		if c.resp != nil && c.resp.Status != 0 {
			v = strconv.Itoa(c.resp.Status)
		}
	}
	if s.maxLen > 0 && len(v) > s.maxLen {
		v = v[:s.maxLen]
	}
	return v
}

// timeSpec is one piece of a compiled strftime-style START_TIME format.
type timeSpec struct {
	text   string // literal, when verb is 0
	verb   byte
	digits int // for %E<n>S and %<n>f
}

// compileTimeFormat compiles the strftime subset Envoy's START_TIME
// formats use, with Envoy's %E<n>S and %<n>f fractional-second extensions.
func compileTimeFormat(s string) ([]timeSpec, error) {
	var out []timeSpec
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			j := strings.IndexByte(s[i:], '%')
			if j < 0 {
				j = len(s) - i
			}
			out = append(out, timeSpec{text: s[i : i+j]})
			i += j - 1
			continue
		}
		i++
		if i >= len(s) {
			return nil, fmt.Errorf("trailing %%")
		}
		switch c := s[i]; c {
		case 'Y', 'm', 'd', 'H', 'M', 'S', 'y', 'j', 'e', 'b', 'B', 'a', 'A', 'p', 'z', 'Z', 's', 'T', 'F', 'D', 'R':
			out = append(out, timeSpec{verb: c})
		case 'f':
			out = append(out, timeSpec{verb: c, digits: 9})
		case '%':
			out = append(out, timeSpec{text: "%"})
		case 'E':
			if i+2 < len(s) && s[i+1] >= '1' && s[i+1] <= '9' && s[i+2] == 'S' {
				out = append(out, timeSpec{verb: 'S', digits: int(s[i+1] - '0')})
				i += 2
				continue
			}
			return nil, fmt.Errorf("unsupported specifier %%E at %d; supported: %%E<1-9>S", i-1)
		default:
			if c >= '1' && c <= '9' && i+1 < len(s) && s[i+1] == 'f' {
				out = append(out, timeSpec{verb: 'f', digits: int(c - '0')})
				i++
				continue
			}
			return nil, fmt.Errorf("unsupported specifier %%%c", c)
		}
	}
	return out, nil
}

// formatTime renders t; a nil spec is Envoy's default
// %Y-%m-%dT%H:%M:%E3SZ.
func formatTime(t time.Time, spec []timeSpec) string {
	if spec == nil {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	var b []byte
	for _, p := range spec {
		switch p.verb {
		case 0:
			b = append(b, p.text...)
		case 'Y':
			b = t.AppendFormat(b, "2006")
		case 'm':
			b = t.AppendFormat(b, "01")
		case 'd':
			b = t.AppendFormat(b, "02")
		case 'H':
			b = t.AppendFormat(b, "15")
		case 'M':
			b = t.AppendFormat(b, "04")
		case 'S':
			b = t.AppendFormat(b, "05")
			if p.digits > 0 {
				b = append(b, '.')
				b = appendFrac(b, t, p.digits)
			}
		case 'y':
			b = t.AppendFormat(b, "06")
		case 'j':
			b = t.AppendFormat(b, "002")
		case 'e':
			b = t.AppendFormat(b, "_2")
		case 'b':
			b = t.AppendFormat(b, "Jan")
		case 'B':
			b = t.AppendFormat(b, "January")
		case 'a':
			b = t.AppendFormat(b, "Mon")
		case 'A':
			b = t.AppendFormat(b, "Monday")
		case 'p':
			b = t.AppendFormat(b, "PM")
		case 'z':
			b = t.AppendFormat(b, "-0700")
		case 'Z':
			b = t.AppendFormat(b, "MST")
		case 's':
			b = strconv.AppendInt(b, t.Unix(), 10)
		case 'T':
			b = t.AppendFormat(b, "15:04:05")
		case 'F':
			b = t.AppendFormat(b, "2006-01-02")
		case 'D':
			b = t.AppendFormat(b, "01/02/06")
		case 'R':
			b = t.AppendFormat(b, "15:04")
		case 'f':
			b = appendFrac(b, t, p.digits)
		}
	}
	return string(b)
}

func appendFrac(b []byte, t time.Time, digits int) []byte {
	ns := strconv.Itoa(t.Nanosecond())
	ns = strings.Repeat("0", 9-len(ns)) + ns
	return append(b, ns[:digits]...)
}
