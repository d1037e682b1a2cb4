package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Load is one way of driving a target; every target of a scenario gets
// the same Load.
type Load interface {
	Run(ctx context.Context, t *Target, dir string) (Result, error)
	// Command is the exact command (or generator settings) used.
	Command(t *Target, dir string) string
}

func (w Wrk) Command(t *Target, dir string) string {
	return shellJoin(w.Args(t, dir+"/summary.lua"))
}

func (h H2load) Run(ctx context.Context, t *Target, _ string) (Result, error) { return h.run(ctx, t) }

func (h H2load) Command(t *Target, _ string) string { return shellJoin(h.Args(t)) }

func (f FixedRate) Run(ctx context.Context, t *Target, _ string) (Result, error) {
	return f.run(ctx, t)
}

func (f FixedRate) Command(t *Target, _ string) string {
	return fmt.Sprintf("built-in fixed-rate generator: %d req/s for %s over %d keep-alive connections, GET http://%s%s%s",
		f.Rate, f.Duration, f.Conns, t.Addr, f.Path, headerNote(t))
}

func (id Idle) Run(ctx context.Context, t *Target, _ string) (Result, error) { return id.run(ctx, t) }

func (id Idle) Command(t *Target, _ string) string {
	return fmt.Sprintf("built-in idle opener: %d connections, one GET http://%s%s each, then %s idle; RSS (VmRSS) of the tree before and after",
		id.Conns, t.Addr, id.Path, id.Settle)
}

func headerNote(t *Target) string {
	if len(t.Headers) == 0 {
		return ""
	}
	keys := make([]string, 0, len(t.Headers))
	for k := range t.Headers {
		keys = append(keys, k)
	}
	return " with " + strings.Join(keys, ", ")
}

// shellJoin quotes arguments the way a shell would need them; a bearer
// token is abbreviated, it is fresh for every run anyway.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "Authorization: Bearer ") {
			a = "Authorization: Bearer $TOKEN"
		}
		if strings.ContainsAny(a, " '\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// warmUp is a short closed-loop load before the first measured round, so
// no target is measured while it is still growing pools or JIT-free
// caches (nginx's open_file_cache, Go's heap).
func warmUp(ctx context.Context, t *Target, dir, path string) error {
	if path == "" {
		path = "/1k"
	}
	_, err := Wrk{Threads: 1, Conns: 64, Duration: 2 * time.Second, Path: path}.Run(ctx, t, dir)
	return err
}
