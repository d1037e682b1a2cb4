package bench

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := "Running 10s test @ http://127.0.0.1:1/1k\n" +
		"WRKBENCH requests=450000 duration=10000000 connect=0 read=2 write=0 timeout=1 status=3 p50=1200 p90=2500 p99=9000 p999=15000 mean=1400\n"
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 45000 || r.Errors != 6 || r.P50 != 1200*time.Microsecond || r.P999 != 15*time.Millisecond {
		t.Errorf("got %+v", r)
	}
	if _, err := parseWrk("unable to connect"); err == nil {
		t.Error("no summary line: want an error")
	}
}

func TestParseH2load(t *testing.T) {
	out := `finished in 10.00s, 41234.50 req/s, 45.12MB/s
requests: 412345 total, 412445 started, 412345 done, 412300 succeeded, 45 failed, 45 errored, 0 timeout
status codes: 412300 2xx, 0 3xx, 0 4xx, 5 5xx
time for request:      210us     45.12ms      2.35ms      1.10ms    80.12%
`
	r, err := parseH2load(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 41234.5 || r.Requests != 412345 || r.Errors != 50 || r.Mean != 2350*time.Microsecond {
		t.Errorf("got %+v", r)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	st, err := parseStat("42 (nginx: worker (x)) S 41 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0")
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 41 || st.utime != 250 || st.stime != 50 || st.cutime != 7 || st.cstime != 3 {
		t.Errorf("got %+v", st)
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 1000)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Microsecond
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Microsecond}, {99, 990 * time.Microsecond}, {99.9, 999 * time.Microsecond}, {100, time.Millisecond}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestMedianSumsErrors(t *testing.T) {
	m := median([]Result{{RPS: 10, Errors: 1}, {RPS: 30, Errors: 2}, {RPS: 20}})
	if m.RPS != 20 || m.Errors != 3 {
		t.Errorf("got rps %v errors %d, want 20 and 3", m.RPS, m.Errors)
	}
}

func TestSelectScenarios(t *testing.T) {
	all := Scenarios(Settings{Duration: time.Second, Conns: 64, Rate: 1000, IdleConns: 10})
	got, err := SelectScenarios(all, "main")
	if err != nil || len(got) != len(mainScenarios) {
		t.Fatalf("main: %v, %d scenarios", err, len(got))
	}
	if _, err := SelectScenarios(all, "h3"); err == nil {
		t.Error("unknown scenario: want an error")
	}
}

func TestParseStraceSummary(t *testing.T) {
	out := `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 45.00    0.450000           4    100000           write
 30.00    0.300000           3    100000     50000 read
 25.00    0.250000           5     50000           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    1.000000           4    250000     50000 total
`
	sc := parseStraceSummary(out)
	if sc.Calls != 250000 || len(sc.Top) != 3 || sc.Top[2].Name != "epoll_wait" {
		t.Errorf("got %+v", sc)
	}
}

func TestParseHeapInuse(t *testing.T) {
	for _, tt := range []struct {
		name, profile string
		want          int64
		err           bool
	}{
		{"memstats", "heap profile: 1: 2 [3: 4] @ heap/1048576\n# runtime.MemStats\n# HeapAlloc = 8530144\n# HeapInuse = 10420224\n# HeapIdle = 1\n", 10420224, false},
		{"missing", "heap profile: 1: 2 [3: 4] @ heap/1048576\n", 0, true},
		{"not a number", "# HeapInuse = many\n", 0, true},
	} {
		got, err := parseHeapInuse(tt.profile)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: got %d, %v; want %d, error %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}
