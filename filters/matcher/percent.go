package matcher

import (
	"errors"
	"fmt"
	"math/rand/v2"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// Percent is a compiled envoy.type.v3.FractionalPercent.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/type/v3/percent.proto#type-v3-fractionalpercent
type Percent struct {
	Numerator, Denominator uint64
}

// CompilePercent compiles p; a nil p is an error (callers decide what an
// absent percentage means).
func CompilePercent(p *typev3.FractionalPercent) (Percent, error) {
	if p == nil {
		return Percent{}, errors.New("must be set")
	}
	var d uint64
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		d = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		d = 10_000
	case typev3.FractionalPercent_MILLION:
		d = 1_000_000
	default:
		return Percent{}, fmt.Errorf("denominator: %v is not one of HUNDRED, TEN_THOUSAND, MILLION", p.GetDenominator())
	}
	return Percent{Numerator: uint64(p.GetNumerator()), Denominator: d}, nil
}

// CompileRuntimePercent compiles the default value of a
// RuntimeFractionalPercent (Waygate has no runtime layer).
func CompileRuntimePercent(p *corev3.RuntimeFractionalPercent) (Percent, error) {
	if p.GetDefaultValue() == nil {
		return Percent{}, errors.New("default_value: must be set")
	}
	pc, err := CompilePercent(p.GetDefaultValue())
	if err != nil {
		return pc, fmt.Errorf("default_value.%w", err)
	}
	return pc, nil
}

// SampleWith follows Envoy's Runtime::featureEnabled:
// random % denominator < numerator.
func (p Percent) SampleWith(random uint64) bool {
	if p.Denominator == 0 {
		return false
	}
	return random%p.Denominator < p.Numerator
}

// Sample is one independent random decision, true with probability
// numerator/denominator.
func (p Percent) Sample() bool {
	switch {
	case p.Numerator == 0 || p.Denominator == 0:
		return false
	case p.Numerator >= p.Denominator:
		return true
	}
	return rand.Uint64N(p.Denominator) < p.Numerator
}
