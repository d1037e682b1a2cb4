package hcm_test

import (
	"strings"
	"testing"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestBufferedResponseOverLimit checks Envoy's answer to a response a
// filter buffers past the buffer limit: 500 while no header left, not a
// reset stream.
func TestBufferedResponseOverLimit(t *testing.T) {
	bodies := startBodyEcho(t)
	for _, c := range []struct{ spec, small string }{
		{"rewrite-resp=new", "NEW:CL=5 BODY=SMALL"}, // a body filter buffers
		{"hold-hdr", "cl=5 body=small"},             // a header filter holds the head for the body
	} {
		spec := c.spec
		t.Run(spec, func(t *testing.T) {
			gw := hcmtest.Start(t, hcmtest.Options{
				HCM:         hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "bodies")), tag(t, "a", spec), tag(t, "b", "details")),
				Clusters:    staticClusters([]*clusterSpec{{"bodies", bodies}}),
				BufferLimit: 1024,
			})
			cl := hcmtest.Client()
			r := do(t, cl, "POST", gw.URL+"/", strings.Repeat("x", 4096))
			if r.status != 500 || r.body != "Internal Server Error" {
				t.Errorf("got %d %.60q, want 500 %q", r.status, r.body, "Internal Server Error")
			}
			if r := do(t, cl, "POST", gw.URL+"/", "small"); r.status != 200 || r.body != c.small {
				t.Errorf("under the limit: got %d %q", r.status, r.body)
			}
		})
	}
}
