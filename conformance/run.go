package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Result is the verdict on one scenario.
type Result struct {
	Scenario string
	Pass     bool
	// Err is set when the scenario could not run at all (a backend or
	// the gateway did not start, a file did not render).
	Err    string
	Checks []CheckResult
	Took   time.Duration
	// Log is the tail of the gateway's output, kept when it failed.
	Log string
}

// settleFor bounds how long the first check of a step is retried while a
// new configuration propagates.
const settleFor = 5 * time.Second

// Run runs one scenario on its own gateway process and backends.
func Run(ctx context.Context, bin string, s *Scenario) (res Result) {
	start := time.Now()
	res.Scenario = s.Name
	defer func() {
		res.Took = time.Since(start)
		res.Pass = res.Err == "" && len(res.Checks) > 0
		for _, c := range res.Checks {
			res.Pass = res.Pass && c.Pass
		}
	}()
	p := &ports{backends: map[string]int{}, gateway: map[string]int{}, issuers: map[string]*issuer{}}
	bs, err := startBackends(s, p)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer bs.close()
	dir, err := os.MkdirTemp("", "waygate-conformance-"+s.Name+"-")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	if len(s.Certificates) > 0 {
		certDir, err := os.MkdirTemp("", "waygate-conformance-certs-")
		if err != nil {
			res.Err = err.Error()
			return res
		}
		defer os.RemoveAll(certDir)
		if p.pki, err = newPKI(certDir, s.Certificates); err != nil {
			res.Err = "certificates: " + err.Error()
			return res
		}
	}

	if s.MeshCA {
		meshDir, err := os.MkdirTemp("", "waygate-conformance-mesh-")
		if err != nil {
			res.Err = err.Error()
			return res
		}
		defer os.RemoveAll(meshDir)
		if p.mesh, err = newMeshCA(bin, meshDir, s.meshIdentities()); err != nil {
			res.Err = "mesh CA: " + err.Error()
			return res
		}
	}

	var gw *gatewayProcess
	defer func() {
		if gw == nil {
			return
		}
		gw.stop()
		if !res.Pass {
			res.Log = gw.stderr.String()
		}
	}()
	tg := target{ports: p, backends: bs}
	for i := range s.Steps {
		st := &s.Steps[i]
		before := ""
		if gw != nil {
			before = gw.configDump(ctx)
		}
		if err := writeStep(s, st, p, dir); err != nil {
			res.Err = fmt.Sprintf("%s: %v", st.Name, err)
			return res
		}
		if gw == nil {
			if gw, err = startFirst(bin, dir, s, st, p); err != nil {
				res.Err = err.Error()
				return res
			}
		} else {
			gw.waitConfigChange(ctx, before, 3*time.Second)
		}
		for j := range st.Checks {
			c := &st.Checks[j]
			settle := j == 0 && (st.Settle == nil || *st.Settle)
			r := runCheck(ctx, c, tg)
			tries := 1
			for deadline := time.Now().Add(settleFor); settle && !r.Pass && time.Now().Before(deadline); tries++ {
				time.Sleep(100 * time.Millisecond)
				r = runCheck(ctx, c, tg)
			}
			if tries > 1 {
				r.Figures = append(r.Figures, fmt.Sprintf("%d tries while the configuration propagated", tries))
			}
			r.Step = st.Name
			res.Checks = append(res.Checks, r)
			if ctx.Err() != nil {
				res.Err = ctx.Err().Error()
				return res
			}
		}
	}
	return res
}

// startFirst starts the gateway on the first step's files. A gateway
// port picked free can be taken by someone else before the gateway binds
// it; then the ports are picked again and the files rewritten, twice at
// most.
func startFirst(bin, dir string, s *Scenario, st *Step, p *ports) (*gatewayProcess, error) {
	for attempt := 0; ; attempt++ {
		extra := slices.Clone(s.GatewayFlags)
		if p.mesh != nil {
			extra = append(extra, "--ca-dir", p.mesh.caDir)
		}
		gw, err := startGateway(bin, dir, extra...)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			return gw, err
		}
		p.mu.Lock()
		p.gateway = map[string]int{}
		p.mu.Unlock()
		if err := writeStep(s, st, p, dir); err != nil {
			return nil, err
		}
	}
}

// writeStep renders the step's files into dir, each written then
// renamed as an editor saves, and removes the previous step's files
// that this step does not list.
func writeStep(s *Scenario, st *Step, p *ports, dir string) error {
	keep := map[string]bool{}
	for _, f := range st.Apply {
		b, err := p.render(filepath.Join(s.Dir, f))
		if err != nil {
			return err
		}
		name := filepath.Base(f)
		keep[name] = true
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
