package accesslog

import (
	"fmt"
	"time"

	"github.com/waygate/waygate/filters"
)

// DefaultFormat is Envoy's default access log format.
const DefaultFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ` +
	`"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"` + "\n"

// IstioFormat is the text format Istio (1.23 and later) configures when
// meshConfig.accessLogFile is set and accessLogFormat is not.
const IstioFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ` +
	`"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ` +
	`"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% ` +
	`%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ` +
	`%REQUESTED_SERVER_NAME% %ROUTE_NAME%` + "\n"

// Format is a compiled access log format, immutable and safe for
// concurrent use.
type Format struct {
	segs []segment // text formats
	json *jsonNode // JSON formats
	// omitEmpty renders unset values as "" in text and leaves their keys
	// out in JSON (SubstitutionFormatString.omit_empty_values).
	omitEmpty bool
}

// Compile compiles an Envoy format string. Errors give the position and
// the operator at fault.
func Compile(format string) (*Format, error) {
	segs, err := parse(format)
	if err != nil {
		return nil, fmt.Errorf("access log format: %w", err)
	}
	return &Format{segs: segs}, nil
}

// Append appends the log entry for x, ended at end, to dst.
func (f *Format) Append(dst []byte, x *filters.Exchange, end time.Time) []byte {
	if f.json != nil {
		return f.appendJSON(dst, x, end)
	}
	return f.appendText(dst, f.segs, x, end, "-")
}

// appendText renders segments as text, with missing for unset values.
func (f *Format) appendText(dst []byte, segs []segment, x *filters.Exchange, end time.Time, missing string) []byte {
	if f.omitEmpty {
		missing = ""
	}
	for i := range segs {
		s := &segs[i]
		if s.op == nil {
			dst = append(dst, s.lit...)
			continue
		}
		start := len(dst)
		var k valueKind
		dst, k = s.op.appendValue(dst, x, end)
		if k == unset {
			dst = append(dst, missing...)
			continue
		}
		if s.op.maxLen > 0 && len(dst)-start > s.op.maxLen {
			dst = dst[:start+s.op.maxLen]
		}
	}
	return dst
}
