package conformance

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// BuildWaygate compiles cmd/waygate into dir and returns the binary's
// path. The go command resolves the package from the module, so it works
// from any directory inside the repository.
func BuildWaygate(dir string) (string, error) {
	bin := filepath.Join(dir, "waygate")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/waygate/waygate/cmd/waygate")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/waygate: %v\n%s", err, out)
	}
	return bin, nil
}

// gatewayProcess is one `waygate run` serving a scenario's config dir.
type gatewayProcess struct {
	cmd    *exec.Cmd
	admin  string
	stdout *tailBuffer
	stderr *tailBuffer
	done   chan struct{}
}

// startGateway runs `waygate run --config dir` with the extra flags
// (--ca-dir) and waits until it says it is serving. The admin server binds port 0 and the runner reads the
// address from the summary: a port picked here and freed could be taken
// by the gateway's own xDS listener before the admin server binds it.
func startGateway(bin, dir string, extra ...string) (*gatewayProcess, error) {
	g := &gatewayProcess{
		stdout: &tailBuffer{max: 64 << 10},
		stderr: &tailBuffer{max: 64 << 10},
		done:   make(chan struct{}),
	}
	args := append([]string{"run", "--config", dir, "--admin", "127.0.0.1:0", "--access-log", "", "--drain-time", "1s"}, extra...)
	g.cmd = exec.Command(bin, args...)
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	deadline := time.After(20 * time.Second)
	for {
		if m := adminLine.FindStringSubmatch(g.stdout.String()); m != nil {
			g.admin = m[1]
			return g, nil
		}
		select {
		case <-g.done:
			return nil, fmt.Errorf("waygate run exited before serving: %s", lastLine(g.stderr.String()))
		case <-deadline:
			g.stop()
			return nil, fmt.Errorf("waygate run did not say it is serving within 20s: %s", lastLine(g.stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// adminLine is how `waygate run` names its admin address once serving.
var adminLine = regexp.MustCompile(`(?s)waygate is serving.*\n\s*admin: http://([^/\s]+)/`)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// stop interrupts the process and waits for it, killing it if it does
// not end within 10s.
func (g *gatewayProcess) stop() {
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// configDump returns the admin /config_dump body, "" if unreachable.
func (g *gatewayProcess) configDump(ctx context.Context) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.admin+"/config_dump", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitConfigChange waits until the config dump differs from before and
// then holds still for a moment, so a push that arrives in pieces
// (listeners, then routes) is complete. A step whose YAML renders to the
// same configuration never changes the dump: after max it goes on.
func (g *gatewayProcess) waitConfigChange(ctx context.Context, before string, max time.Duration) bool {
	deadline := time.Now().Add(max)
	cur := before
	for cur == before {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
		cur = g.configDump(ctx)
	}
	for time.Now().Before(deadline) {
		time.Sleep(150 * time.Millisecond)
		next := g.configDump(ctx)
		if next == cur {
			break
		}
		cur = next
	}
	return true
}

// tailBuffer keeps the last max bytes written to it: enough of a log to
// say why a scenario failed, without holding a long run in memory.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
