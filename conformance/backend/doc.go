// Package backend is the echo server that stands in for real workloads in
// Waygate's demos and conformance suite: it answers as a named service and
// version, describes in JSON the request it saw, and can be told through
// request headers or query parameters to fail, stall, reset the connection
// or send a large body, so a scenario can observe what the gateway did
// without any other moving part.
//
// It also plays the Bookinfo services (productpage, details, ratings,
// reviews v1/v2/v3) closely enough for the Istio Bookinfo walkthrough, the
// httpbin target of the circuit-breaking task, and the tcp-echo service of
// the TCP traffic-shifting task:
// https://istio.io/latest/docs/examples/bookinfo/ and
// https://istio.io/latest/docs/tasks/traffic-management/.
//
// Controls (header, or query parameter of the same name without "x-echo-"):
//
//	x-echo-status: 503        ?status=503        answer with that status
//	x-echo-delay: 2s          ?delay=2s          wait first, ending early if the client goes away
//	x-echo-reset: true        ?reset=true        drop the connection without answering
//	x-echo-body-size: 65536   ?body-size=65536   answer with that many bytes
//	x-echo-header: k=v        ?header=k=v        add a response header (repeatable)
//
// Paths with a fixed meaning: /healthz (200, or 503 once unhealthy),
// /fail (always 503), POST /admin/healthy, POST /admin/unhealthy and
// POST /admin/fail?percent=N (answer N% of requests with 503, spread
// evenly, for outlier detection). A backend named httpbin also answers
// httpbin's /status/<code> and /delay/<seconds>.
//
// A request with content-type application/grpc over HTTP/2 goes to a
// gRPC server on the same port: grpc.health.v1.Health and EchoMethod.
package backend
