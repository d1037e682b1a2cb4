package cors

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/waygate/waygate/filters/matcher"
)

// percent is the default_value of a RuntimeFractionalPercent; Waygate has
// no runtime layer, so runtime_key is ignored.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/base.proto#config-core-v3-runtimefractionalpercent
type percent struct{ matcher.Percent }

func compilePercent(r *corev3.RuntimeFractionalPercent) (percent, error) {
	p, err := matcher.CompileRuntimePercent(r)
	return percent{p}, err
}

// draw is one random decision per request.
func (p percent) draw() bool { return p.Sample() }
