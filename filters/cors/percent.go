package cors

import (
	"fmt"
	"math/rand/v2"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// percent is the default_value of a RuntimeFractionalPercent; Waygate has
// no runtime layer, so runtime_key is ignored.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/base.proto#config-core-v3-runtimefractionalpercent
type percent struct {
	num, den uint64
}

func compilePercent(r *corev3.RuntimeFractionalPercent) (percent, error) {
	p := r.GetDefaultValue()
	var den uint64
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		den = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		den = 10_000
	case typev3.FractionalPercent_MILLION:
		den = 1_000_000
	default:
		return percent{}, fmt.Errorf("default_value.denominator: %v is not one of HUNDRED, TEN_THOUSAND, MILLION", p.GetDenominator())
	}
	return percent{num: uint64(p.GetNumerator()), den: den}, nil
}

// draw is one random decision per request, true with probability num/den.
func (p percent) draw() bool {
	if p.num == 0 {
		return false
	}
	if p.num >= p.den {
		return true
	}
	return rand.Uint64N(p.den) < p.num
}
