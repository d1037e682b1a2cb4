package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profile runs the scenario's load once more against a Waygate target,
// outside the measured rounds (profiling costs a few percent), and saves
// a CPU profile from the admin server's /debug/pprof/profile, or for
// idle connections a heap profile taken while they are open. It returns
// the `go tool pprof -top` summary's path, the file worth committing;
// the .pprof itself stays out of git.
func (r *Runner) profile(ctx context.Context, sc Scenario, t *Target, dir string) (string, error) {
	profDir := filepath.Join(r.ResultsDir, "profiles")
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		return "", err
	}
	base := filepath.Join(profDir, sc.Name+"-"+strings.ReplaceAll(t.Name, "+", "-"))
	pprofFile := base + ".pprof"
	sampleIndex := ""
	if idle, ok := sc.Load.(Idle); ok {
		sampleIndex = "-sample_index=inuse_space"
		var herr error
		idle.Hold = func() { herr = fetch(ctx, "http://"+t.Admin+"/debug/pprof/heap?gc=1", pprofFile) }
		if _, err := idle.Run(ctx, t, dir); err != nil {
			return "", err
		}
		if herr != nil {
			return "", herr
		}
	} else {
		secs := max(1, int(scenarioDuration(sc)/time.Second)-2)
		errc := make(chan error, 1)
		go func() {
			// Start sampling once the load is up.
			time.Sleep(time.Second)
			errc <- fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.Admin, secs), pprofFile)
		}()
		stopPush := r.pushEverySecond(sc, t, &ScenarioResult{ReloadErrors: map[string]int{}})
		_, err := sc.Load.Run(ctx, t, dir)
		stopPush()
		if perr := <-errc; perr != nil {
			return "", perr
		}
		if err != nil {
			return "", err
		}
	}
	// Flat costs say which functions burn the time; cumulative ones
	// which steps of a request (codec, filters, upstream) they belong to.
	var top []byte
	for _, order := range [][]string{{"-nodecount=30"}, {"-cum", "-nodecount=40"}} {
		args := append([]string{"tool", "pprof", "-top"}, order...)
		if sampleIndex != "" {
			args = append(args, sampleIndex)
		}
		out, err := exec.Command("go", append(args, pprofFile)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go tool pprof: %v: %s", err, out)
		}
		top = append(append(top, out...), '\n')
	}
	topFile := base + ".top.txt"
	return topFile, os.WriteFile(topFile, top, 0o644)
}

func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s %s", url, resp.Status, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// scenarioDuration is how long one run of the scenario's load lasts.
func scenarioDuration(sc Scenario) time.Duration {
	switch l := sc.Load.(type) {
	case Wrk:
		return l.Duration
	case H2load:
		return l.Duration
	case FixedRate:
		return l.Duration
	}
	return 0
}
