package fault

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// percent is an envoy.type.v3.FractionalPercent. A missing percentage is
// 0/100, as Envoy reads an unset message: a fault without a percentage
// never fires.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/type/v3/percent.proto#type-v3-fractionalpercent
type percent struct {
	num, den uint64
}

func compilePercent(p *typev3.FractionalPercent) (percent, error) {
	var den uint64
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		den = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		den = 10_000
	case typev3.FractionalPercent_MILLION:
		den = 1_000_000
	default:
		return percent{}, fmt.Errorf("denominator: %v is not one of HUNDRED, TEN_THOUSAND, MILLION", p.GetDenominator())
	}
	return percent{num: uint64(p.GetNumerator()), den: den}, nil
}

// draw is one independent random decision, true with probability
// num/den, as Envoy's Runtime featureEnabled (random % den < num).
func (p percent) draw() bool {
	if p.num == 0 {
		return false
	}
	if p.num >= p.den {
		return true
	}
	return rand.Uint64N(p.den) < p.num
}

// capped is the percentage a request header asks for, never above the
// configured one: Envoy's HeaderPercentageProvider takes the smaller
// numerator and keeps the configured denominator, and ignores a header
// that is not an unsigned integer.
func (p percent) capped(header string) percent {
	if header == "" {
		return p
	}
	n, err := strconv.ParseUint(header, 10, 32)
	if err != nil {
		return p
	}
	return percent{num: min(n, p.num), den: p.den}
}
