package router

import "testing"

func TestRetriableHeaders(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{cluster: c, retry_policy: {retry_on: "retriable-headers",
	  retriable_headers: [{name: x-retry, string_match: {exact: "yes"}}],
	  retriable_request_headers: [{name: ":method", string_match: {exact: GET}}]}}`)
	p := r.Forward.Retry
	if !p.RetriableRequest(newReq("GET", "h", "/")) || p.RetriableRequest(newReq("POST", "h", "/")) {
		t.Error("retriable_request_headers")
	}
	if !p.RetriableResponse(map[string][]string{"X-Retry": {"yes"}}) || p.RetriableResponse(map[string][]string{}) {
		t.Error("retriable_headers")
	}
	plain := oneAction(t, `{prefix: /}`, `{cluster: c, retry_policy: {retry_on: "5xx"}}`).Forward.Retry
	if !plain.RetriableRequest(newReq("POST", "h", "/")) || plain.RetriableResponse(map[string][]string{"X-Retry": {"yes"}}) {
		t.Error("a policy without header conditions")
	}
}
