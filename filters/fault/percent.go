package fault

import (
	"strconv"

	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters/matcher"
)

// percent is an envoy.type.v3.FractionalPercent. A missing percentage is
// 0/100, as Envoy reads an unset message: a fault without a percentage
// never fires.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/type/v3/percent.proto#type-v3-fractionalpercent
type percent struct{ matcher.Percent }

func compilePercent(p *typev3.FractionalPercent) (percent, error) {
	if p == nil {
		return percent{matcher.Percent{Denominator: 100}}, nil
	}
	pc, err := matcher.CompilePercent(p)
	return percent{pc}, err
}

// draw is one independent random decision, as Envoy's Runtime
// featureEnabled (random % den < num).
func (p percent) draw() bool { return p.Sample() }

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
	return percent{matcher.Percent{Numerator: min(n, p.Numerator), Denominator: p.Denominator}}
}
