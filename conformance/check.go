package conformance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// CheckResult is the verdict on one check, with the figures behind it.
type CheckResult struct {
	Step, Check string
	Pass        bool
	// Detail says why it failed; Figures what was counted.
	Detail  string
	Figures []string
}

// target is what a check sends its exchanges to.
type target struct {
	ports    *ports
	backends *backends
}

// runCheck sends the check's exchanges and judges them.
func runCheck(ctx context.Context, c *Check, tg target) CheckResult {
	res := CheckResult{Check: c.Name}
	if c.Pause > 0 {
		time.Sleep(time.Duration(c.Pause))
		res.Pass = true
		return res
	}
	portName := ""
	if c.Request != nil {
		portName = c.Request.Port
	} else {
		portName = c.TCP.Port
	}
	port, err := tg.ports.gatewayPort(portName)
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	if c.Request != nil {
		req, err := expandRequest(tg.ports, c.Request)
		if err != nil {
			res.Detail = err.Error()
			return res
		}
		cc := *c
		cc.Request = req
		c = &cc
	}
	before := tg.backends.requests()
	outs, err := send(ctx, c, port, tg.ports.pki, tg.ports.mesh)
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	after := settleCounts(tg.backends, before, c.BackendRequests)

	var why []string
	if c.Expect != nil {
		bad, first := 0, ""
		for _, o := range outs {
			if m := c.Expect.mismatch(o); m != "" {
				if bad == 0 {
					first = m
				}
				bad++
			}
		}
		if bad > 0 {
			if len(outs) == 1 {
				why = append(why, first)
			} else {
				why = append(why, fmt.Sprintf("%d of %d did not match, first: %s", bad, len(outs), first))
			}
		}
	}
	if len(outs) > 1 {
		res.Figures = append(res.Figures, tally(outs))
	}
	if c.Expect != nil && c.Expect.Duration != nil {
		res.Figures = append(res.Figures, timings(outs))
	}
	for _, sh := range c.Shares {
		n := 0
		for _, o := range outs {
			if sh.Match.mismatch(o) == "" {
				n++
			}
		}
		label := sh.Label
		if label == "" {
			label = sh.Match.label()
		}
		pct := 100 * float64(n) / float64(len(outs))
		fig := fmt.Sprintf("%s: %d/%d (%.1f%%)", label, n, len(outs), pct)
		ok := true
		if sh.Percent != nil {
			fig += fmt.Sprintf(", want %s%%", sh.Percent)
			ok = sh.Percent.Contains(pct)
		} else {
			fig += fmt.Sprintf(", want %s", sh.Count)
			ok = sh.Count.Contains(float64(n))
		}
		res.Figures = append(res.Figures, fig)
		if !ok {
			why = append(why, label+" out of range")
		}
	}
	for _, name := range sortedKeys(c.BackendRequests) {
		r := c.BackendRequests[name]
		got := after[name] - before[name]
		res.Figures = append(res.Figures, fmt.Sprintf("backend %s received %d, want %s", name, got, r))
		if !r.Contains(float64(got)) {
			why = append(why, fmt.Sprintf("backend %s received %d requests", name, got))
		}
	}
	res.Pass = len(why) == 0
	res.Detail = strings.Join(why, "; ")
	return res
}

// expandRequest replaces the placeholders in the path and header values
// of r, so a check can carry a token signed for this run.
func expandRequest(p *ports, r *Request) (*Request, error) {
	out := *r
	var err error
	if out.Path, err = p.expand("path", r.Path); err != nil {
		return nil, fmt.Errorf("request path: %w", err)
	}
	out.Headers = make(map[string]string, len(r.Headers))
	for k, v := range r.Headers {
		if out.Headers[k], err = p.expand("header "+k, v); err != nil {
			return nil, fmt.Errorf("request header %s: %w", k, err)
		}
	}
	return &out, nil
}

// settleCounts reads the backends' request counts once they are within
// the wanted ranges, or after 2s: copies such as a mirror's are sent
// after the client has its response, so they may still be on the way.
func settleCounts(bs *backends, before map[string]int64, want map[string]Range) map[string]int64 {
	deadline := time.Now().Add(2 * time.Second)
	for {
		after := bs.requests()
		ok := true
		for name, r := range want {
			ok = ok && r.Contains(float64(after[name]-before[name]))
		}
		if ok || time.Now().After(deadline) {
			return after
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// send runs Count exchanges over Concurrency clients and returns every
// outcome.
func send(ctx context.Context, c *Check, port int, ca *pki, mesh *meshCA) ([]outcome, error) {
	var cl *client
	if c.Request != nil {
		var err error
		if cl, err = newClient(c.Request, c.Concurrency, ca, mesh); err != nil {
			return nil, err
		}
		defer cl.close()
	}
	outs := make([]outcome, c.Count)
	var wg sync.WaitGroup
	for w := 0; w < c.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < c.Count; i += c.Concurrency {
				if cl != nil {
					outs[i] = cl.do(ctx, c.Request, port)
				} else {
					outs[i] = tcpExchange(ctx, c.TCP, port)
				}
			}
		}(w)
	}
	wg.Wait()
	return outs, nil
}

// tally summarizes outcomes as fortio does: how many of each status.
func tally(outs []outcome) string {
	counts := map[string]int{}
	for _, o := range outs {
		switch {
		case o.err != nil:
			counts["error"]++
		case o.status == 0:
			counts["reply"]++
		default:
			counts[fmt.Sprint(o.status)]++
		}
	}
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s x%d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

// timings gives the fastest and slowest exchange, for checks where the
// time taken is the behavior.
func timings(outs []outcome) string {
	lo, hi := outs[0].took, outs[0].took
	for _, o := range outs[1:] {
		lo, hi = min(lo, o.took), max(hi, o.took)
	}
	if len(outs) == 1 {
		return fmt.Sprintf("took %v", lo.Round(time.Millisecond))
	}
	return fmt.Sprintf("took %v-%v", lo.Round(time.Millisecond), hi.Round(time.Millisecond))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
