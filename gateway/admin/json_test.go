package admin

import (
	"net/http/httptest"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// A config from istiod may carry a filter config type this binary does
// not link; the dump must still render, showing that config's type only.
func TestUnknownAnyRendersOpaque(t *testing.T) {
	dump := &adminv3.ConfigDump{Configs: []*anypb.Any{
		{TypeUrl: "type.googleapis.com/stats.PluginConfig", Value: []byte{0x0a, 0x03, 'a', 'b', 'c'}},
	}}
	rec := httptest.NewRecorder()
	writeProto(rec, dump)
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `"@type": "type.googleapis.com/stats.PluginConfig"`) {
		t.Fatalf("code %d:\n%s", rec.Code, body)
	}
}
