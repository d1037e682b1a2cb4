package translate

import (
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"istio.io/api/networking/v1alpha3"
)

// grpcStatus maps the gRPC status names an Istio abort may carry to their
// codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
var grpcStatus = map[string]uint32{
	"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
	"NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
	"FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
	"INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// translateFault turns HTTPFaultInjection into the per-route config of
// envoy.filters.http.fault, as istiod's TranslateFault
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPFaultInjection):
// percentages become parts per million; the deprecated integer delay
// "percent" parts per hundred. Returns nil when nothing can be injected.
func translateFault(in *v1alpha3.HTTPFaultInjection) (*faultv3.HTTPFault, string) {
	if in == nil {
		return nil, ""
	}
	out := &faultv3.HTTPFault{}
	unsupported := ""
	if d := in.Delay; d != nil {
		out.Delay = &faultcommonv3.FaultDelay{}
		if d.Percentage != nil {
			out.Delay.Percentage = percentToFraction(d.Percentage)
		} else {
			//nolint:staticcheck // the deprecated field is still accepted by Istio.
			out.Delay.Percentage = &typev3.FractionalPercent{Numerator: uint32(d.Percent), Denominator: typev3.FractionalPercent_HUNDRED}
		}
		if fd := d.GetFixedDelay(); fd != nil {
			out.Delay.FaultDelaySecifier = &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: fd}
		} else {
			unsupported = "delay: only fixedDelay is supported"
			out.Delay = nil
		}
	}
	if a := in.Abort; a != nil {
		out.Abort = &faultv3.FaultAbort{}
		if a.Percentage != nil {
			out.Abort.Percentage = percentToFraction(a.Percentage)
		}
		switch e := a.ErrorType.(type) {
		case *v1alpha3.HTTPFaultInjection_Abort_HttpStatus:
			out.Abort.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(e.HttpStatus)}
		case *v1alpha3.HTTPFaultInjection_Abort_GrpcStatus:
			code, ok := grpcStatus[e.GrpcStatus]
			if !ok {
				unsupported = "abort.grpcStatus: unknown status " + e.GrpcStatus
				out.Abort = nil
				break
			}
			out.Abort.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: code}
		default:
			unsupported = "abort: only httpStatus and grpcStatus are supported"
			out.Abort = nil
		}
	}
	if out.Delay == nil && out.Abort == nil {
		return nil, unsupported
	}
	return out, unsupported
}

// percentToFraction converts an Istio Percent (0-100, fractional) into
// parts per million, as istiod does.
func percentToFraction(p *v1alpha3.Percent) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: uint32(p.GetValue() * 10000), Denominator: typev3.FractionalPercent_MILLION}
}
