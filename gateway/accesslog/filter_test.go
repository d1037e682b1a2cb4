package accesslog

import (
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters"
)

func cmp(op accesslogv3.ComparisonFilter_Op, v uint32) *accesslogv3.ComparisonFilter {
	return &accesslogv3.ComparisonFilter{Op: op, Value: &corev3.RuntimeUInt32{DefaultValue: v}}
}

func durationFilter(op accesslogv3.ComparisonFilter_Op, ms uint32) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_DurationFilter{DurationFilter: &accesslogv3.DurationFilter{Comparison: cmp(op, ms)}}}
}

func statusFilter(op accesslogv3.ComparisonFilter_Op, code uint32) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: cmp(op, code)}}}
}

func flagFilter(flags ...string) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: flags}}}
}

func headerFilter(h *routev3.HeaderMatcher) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_HeaderFilter{HeaderFilter: &accesslogv3.HeaderFilter{Header: h}}}
}

func TestFilters(t *testing.T) {
	healthCheck := exchange()
	healthCheck.SetMetadata(HealthCheckNamespace, HealthCheckKey, true)
	overflow := exchange()
	overflow.Response.Status = 503
	overflow.Info.AddResponseFlag("UO")
	grpcFailed := exchange()
	grpcFailed.Response.Trailer.Set("Grpc-Status", "14")
	noResponse := &filters.Exchange{}
	noResponse.Info.Start = start

	tests := []struct {
		name   string
		filter *accesslogv3.AccessLogFilter
		x      *filters.Exchange
		want   bool
	}{
		{"status GE passes", statusFilter(accesslogv3.ComparisonFilter_GE, 500), overflow, true},
		{"status GE drops", statusFilter(accesslogv3.ComparisonFilter_GE, 500), exchange(), false},
		{"status EQ", statusFilter(accesslogv3.ComparisonFilter_EQ, 204), exchange(), true},
		{"status NE", statusFilter(accesslogv3.ComparisonFilter_NE, 204), exchange(), false},
		{"status LE no response", statusFilter(accesslogv3.ComparisonFilter_LE, 0), noResponse, true},
		{"duration GE", durationFilter(accesslogv3.ComparisonFilter_GE, 200), exchange(), true},
		{"duration LE", durationFilter(accesslogv3.ComparisonFilter_LE, 200), exchange(), false},
		{"not health check passes requests", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_NotHealthCheckFilter{}}, exchange(), true},
		{"not health check drops checks", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_NotHealthCheckFilter{}}, healthCheck, false},
		{"any flag", flagFilter(), overflow, true},
		{"any flag, none set", flagFilter(), exchange(), false},
		{"listed flag", flagFilter("UH", "UO"), overflow, true},
		{"unlisted flag", flagFilter("UH"), overflow, false},
		{"and", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{AndFilter: &accesslogv3.AndFilter{
			Filters: []*accesslogv3.AccessLogFilter{statusFilter(accesslogv3.ComparisonFilter_GE, 500), flagFilter("UO")}}}}, overflow, true},
		{"and fails", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{AndFilter: &accesslogv3.AndFilter{
			Filters: []*accesslogv3.AccessLogFilter{statusFilter(accesslogv3.ComparisonFilter_GE, 500), flagFilter("UH")}}}}, overflow, false},
		{"or", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{OrFilter: &accesslogv3.OrFilter{
			Filters: []*accesslogv3.AccessLogFilter{statusFilter(accesslogv3.ComparisonFilter_GE, 500), durationFilter(accesslogv3.ComparisonFilter_GE, 1000)}}}}, exchange(), false},
		{"or passes", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{OrFilter: &accesslogv3.OrFilter{
			Filters: []*accesslogv3.AccessLogFilter{statusFilter(accesslogv3.ComparisonFilter_GE, 500), durationFilter(accesslogv3.ComparisonFilter_GE, 100)}}}}, exchange(), true},
		{"header present", headerFilter(&routev3.HeaderMatcher{Name: "user-agent", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}), exchange(), true},
		{"header absent", headerFilter(&routev3.HeaderMatcher{Name: "x-debug", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}), exchange(), false},
		{"header string prefix", headerFilter(&routev3.HeaderMatcher{Name: "user-agent", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "NSQ"}, IgnoreCase: true}}}), exchange(), true},
		{"header regex inverted", headerFilter(&routev3.HeaderMatcher{Name: ":method", InvertMatch: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_SafeRegexMatch{
			SafeRegexMatch: &matcherv3.RegexMatcher{Regex: "GET|HEAD"}}}), exchange(), true},
		{"runtime all", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_RuntimeFilter{RuntimeFilter: &accesslogv3.RuntimeFilter{
			RuntimeKey: "access_log.sample", PercentSampled: &typev3.FractionalPercent{Numerator: 100}}}}, exchange(), true},
		{"runtime none", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_RuntimeFilter{RuntimeFilter: &accesslogv3.RuntimeFilter{
			RuntimeKey: "access_log.sample"}}}, exchange(), false},
		{"grpc status listed", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_GrpcStatusFilter{GrpcStatusFilter: &accesslogv3.GrpcStatusFilter{
			Statuses: []accesslogv3.GrpcStatusFilter_Status{accesslogv3.GrpcStatusFilter_UNAVAILABLE}}}}, grpcFailed, true},
		{"grpc status excluded", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_GrpcStatusFilter{GrpcStatusFilter: &accesslogv3.GrpcStatusFilter{
			Statuses: []accesslogv3.GrpcStatusFilter_Status{accesslogv3.GrpcStatusFilter_OK}, Exclude: true}}}, exchange(), false},
		{"grpc status from http", &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_GrpcStatusFilter{GrpcStatusFilter: &accesslogv3.GrpcStatusFilter{
			Statuses: []accesslogv3.GrpcStatusFilter_Status{accesslogv3.GrpcStatusFilter_UNAVAILABLE}}}}, func() *filters.Exchange {
			x := exchange()
			x.Response.Trailer = nil
			x.Response.Status = 503
			return x
		}(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := compileFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := f(tt.x, end); got != tt.want {
				t.Errorf("filter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRuntimeFilterFollowsRequestID(t *testing.T) {
	f := runtimeFilter(&accesslogv3.RuntimeFilter{PercentSampled: &typev3.FractionalPercent{Numerator: 50}})
	x := exchange()
	first := f(x, time.Time{})
	for range 20 {
		if f(x, time.Time{}) != first {
			t.Fatal("sampling of one request id changed between calls")
		}
	}
}
