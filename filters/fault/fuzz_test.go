package fault

import (
	"context"
	"strconv"
	"testing"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"

	"github.com/waygate/waygate/filters"
)

// FuzzHeaderAbort feeds untrusted fault headers to a header-controlled
// abort: whatever they hold, the filter either lets the request through
// or answers with a status Envoy would send.
func FuzzHeaderAbort(f *testing.F) {
	for _, s := range [][3]string{{"503", "", ""}, {"", "14", ""}, {"700", "", "50"}, {"-1", "x", "100"}, {"200", "4294967296", "-5"}} {
		f.Add(s[0], s[1], s[2], false)
	}
	fac, err := New(&faultv3.HTTPFault{Abort: headerAbortCfg(all())}, filters.Env{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status, grpc, percentage string, isGRPC bool) {
		hdr := []string{hdrAbort, status, hdrAbortGRPC, grpc, hdrAbortPercent, percentage}
		if isGRPC {
			hdr = append(hdr, "Content-Type", "application/grpc")
		}
		x := newExchange(context.Background(), nil, hdr...)
		st, _, _ := run(fac, x)
		r := x.LocalReply()
		if (st == filters.Stop) != (r != nil) {
			t.Fatalf("status %v with reply %+v", st, r)
		}
		if r == nil {
			return
		}
		if r.Status < 200 || r.Status >= 600 {
			t.Fatalf("reply status %d", r.Status)
		}
		if gs := r.Header.Get("Grpc-Status"); gs != "" {
			if _, err := strconv.ParseUint(gs, 10, 32); err != nil || r.Status != 200 {
				t.Fatalf("grpc reply %d grpc-status %q", r.Status, gs)
			}
		}
		if f := fac.ActiveFaults(); f != 0 {
			t.Fatalf("active faults %d after the stream", f)
		}
	})
}
