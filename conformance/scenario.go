package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Scenario is one scenarios/<name>/scenario.yaml: the backends it needs
// and the steps it goes through, in order, on one gateway process.
type Scenario struct {
	// Name is the directory name; it is what -run and the table use.
	Name string `yaml:"-"`
	// Dir is the scenario's directory; Apply paths are relative to it.
	Dir string `yaml:"-"`

	// Description says, in a sentence, what a user would see.
	Description string `yaml:"description"`
	// Seed points at the part of the seed study guide it follows.
	Seed string `yaml:"seed"`
	// Bookinfo adds the Bookinfo backends productpage-v1, details-v1,
	// ratings-v1, reviews-v1, reviews-v2 and reviews-v3.
	Bookinfo bool `yaml:"bookinfo"`
	// Backends are the other backends to start.
	Backends []BackendSpec `yaml:"backends"`
	// Certificates are made by the scenario's own CA before the gateway
	// starts: {{cert "name"}} and {{key "name"}} are their files, {{ca}}
	// the CA's, and checks trust that CA.
	Certificates []CertSpec `yaml:"certificates"`
	// MeshCA gives `waygate run` a mesh CA directory (--ca-dir), as
	// istiod's root: ISTIO_MUTUAL servers present a workload certificate
	// from it, and the clients a check names by meshIdentity hold
	// certificates from it, issued with `waygate ca`. {{mesh_cert
	// "ns/sa"}} and {{mesh_key "ns/sa"}} are such a certificate's files,
	// {{mesh_ca}} the root's.
	MeshCA bool `yaml:"meshCA"`
	// GatewayFlags are more flags for `waygate run`, such as the
	// gateway's --locality.
	GatewayFlags []string `yaml:"gatewayFlags"`
	// Steps run in order; each replaces the previous one's YAML.
	Steps []Step `yaml:"steps"`
}

// BackendSpec is one backend of a scenario, started on a free loopback
// port that {{port "<name>"}} stands for in the YAML.
type BackendSpec struct {
	// Name is how the YAML and checks refer to it; default
	// "<service>-<version>".
	Name    string `yaml:"name"`
	Service string `yaml:"service"`
	Version string `yaml:"version"`
	// Kind is "http" (the default, the echo backend), "tcp" (tcp-echo,
	// answering each line with "<prefix> <line>") or "jwks" (a JWT
	// issuer serving its keys for jwksUri, {{jwks "<name>"}} inlines
	// them, and {{token "<name>" "sub=alice"}} in a request header or
	// path is a token it signed).
	Kind string `yaml:"kind"`
	// Prefix is what a tcp backend puts before each line; default Version.
	Prefix string `yaml:"prefix"`
	// FailPercent answers that share of requests with 503, evenly spread.
	FailPercent int `yaml:"failPercent"`
}

// Step applies a set of Istio YAML files and then runs checks.
type Step struct {
	Name string `yaml:"name"`
	// Apply lists the YAML files of this step, relative to the scenario
	// directory ("../_bookinfo/services.yaml" shares a file). They are
	// the whole configuration: files of the previous step that are not
	// listed are removed.
	Apply []string `yaml:"apply"`
	// Settle, when false, does not retry the first check while the new
	// configuration propagates; for steps whose first check is slow.
	Settle *bool `yaml:"settle"`
	// Checks run in order once the configuration is live.
	Checks []Check `yaml:"checks"`
}

// Check is one observation: a request (or TCP exchange) sent Count
// times by Concurrency clients, what every response must look like, and
// what shares of the responses must fall in which ranges.
type Check struct {
	Name string `yaml:"name"`
	// Request is an HTTP request; TCP a line exchange. Exactly one of
	// them, unless Pause is set alone.
	Request *Request     `yaml:"request"`
	TCP     *TCPExchange `yaml:"tcp"`
	// Pause waits that long instead of sending anything (for outlier
	// detection intervals).
	Pause Duration `yaml:"pause"`
	// Count is how many requests in all (default 1); Concurrency how
	// many clients send them at once (default 1), fortio's -n and -c.
	Count       int `yaml:"count"`
	Concurrency int `yaml:"concurrency"`
	// Expect must hold for every response.
	Expect *Expect `yaml:"expect"`
	// Shares count the responses matching each entry and bound the count
	// or percentage; the figures are printed in the table.
	Shares []Share `yaml:"shares"`
	// BackendRequests bounds how many requests each named backend
	// received during the check (a mirror's copies, say).
	BackendRequests map[string]Range `yaml:"backendRequests"`
}

// Request is an HTTP request to the gateway.
type Request struct {
	// Port names a gateway port ({{gateway_port "<name>"}}); default "http".
	Port   string `yaml:"port"`
	Method string `yaml:"method"`
	// Path includes the query ("/reviews/0?x=1"). Path and header
	// values may use {{token ...}} and the port placeholders.
	Path    string            `yaml:"path"`
	Host    string            `yaml:"host"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	// Protocol is "h1" (default), "h2c" (HTTP/2 with prior knowledge),
	// "https" (HTTP/1.1 over TLS) or "h2" (HTTP/2 over TLS by ALPN).
	Protocol string `yaml:"protocol"`
	// SNI is the TLS server name; default Host without its port.
	SNI string `yaml:"sni"`
	// ClientCert names a certificate of the scenario to present.
	ClientCert string `yaml:"clientCert"`
	// MeshIdentity ("default/sleep") speaks Istio mTLS as that workload
	// of the scenario's mesh CA: it presents the workload's certificate
	// and checks the gateway's SPIFFE identity against the mesh root. A
	// TLS request without it trusts the mesh root too, presenting no
	// certificate, when the scenario has a mesh CA and no certificates.
	MeshIdentity string `yaml:"meshIdentity"`
	// Timeout bounds the client's wait; default 15s.
	Timeout Duration `yaml:"timeout"`
}

// TCPExchange opens a connection to a gateway port, sends one line and
// reads one line back.
type TCPExchange struct {
	Port string `yaml:"port"`
	Send string `yaml:"send"`
}

// Expect is what one response must look like; every field set must hold.
type Expect struct {
	// Status is the HTTP status; 0 means any. Error true expects the
	// exchange to fail (connection refused or reset).
	Status int  `yaml:"status"`
	Error  bool `yaml:"error"`
	// Proto is the response's protocol as the client saw it ("HTTP/2.0").
	Proto string `yaml:"proto"`
	// Headers must be present with these exact values ("*": any value);
	// AbsentHeaders must not be present.
	Headers       map[string]string `yaml:"headers"`
	AbsentHeaders []string          `yaml:"absentHeaders"`
	// Body fragments must all appear in the body (or the TCP reply).
	Body []string `yaml:"body"`
	// Echo checks the request the echo backend says it received.
	Echo *EchoExpect `yaml:"echo"`
	// Duration bounds how long the exchange took; keep it generous and
	// use it only where timing is the behavior (delays, timeouts).
	Duration *DurationRange `yaml:"duration"`
}

// EchoExpect is checked against the JSON the echo backend answers with.
type EchoExpect struct {
	Service       string            `yaml:"service"`
	Version       string            `yaml:"version"`
	Path          string            `yaml:"path"`
	Host          string            `yaml:"host"`
	Method        string            `yaml:"method"`
	Headers       map[string]string `yaml:"headers"`
	AbsentHeaders []string          `yaml:"absentHeaders"`
}

// Share bounds the part of a check's responses that match it.
type Share struct {
	// Label names the share in the table; default derived from Match.
	Label string `yaml:"label"`
	Match Expect `yaml:"match"`
	// Percent bounds the matching share of Count, Count the number.
	Percent *Range `yaml:"percent"`
	Count   *Range `yaml:"count"`
}

// Range is an inclusive [min, max] written as a two-element list.
type Range [2]float64

// DurationRange is an inclusive range of durations, "min" and "max".
type DurationRange struct {
	Min Duration `yaml:"min"`
	Max Duration `yaml:"max"`
}

// Duration reads Go duration strings ("500ms", "7s") from YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q: want a Go duration such as 500ms or 7s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// LoadAll reads every scenario under dir, sorted by name. Directories
// whose name starts with "_" hold shared YAML and are not scenarios.
func LoadAll(dir string) ([]*Scenario, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*Scenario
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		s, err := Load(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

// Load reads and validates one scenario directory.
func Load(dir string) (*Scenario, error) {
	file := filepath.Join(dir, "scenario.yaml")
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s := &Scenario{Name: filepath.Base(dir), Dir: dir}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// UnmarshalYAML reads a range written [min, max].
func (r *Range) UnmarshalYAML(n *yaml.Node) error {
	var v []float64
	if err := n.Decode(&v); err != nil || len(v) != 2 || v[0] > v[1] {
		return fmt.Errorf("line %d: want a range [min, max] with min <= max", n.Line)
	}
	*r = Range{v[0], v[1]}
	return nil
}

// Contains reports whether x is within the range, bounds included.
func (r Range) Contains(x float64) bool { return x >= r[0] && x <= r[1] }

func (r Range) String() string { return fmt.Sprintf("%g-%g", r[0], r[1]) }
