package bench

import "time"

// Result is one run against one target.
type Result struct {
	Target   string
	Requests int64
	Seconds  float64
	RPS      float64
	// Latency percentiles; zero when the tool does not report them
	// (h2load reports the mean only).
	P50, P90, P99, P999, Mean time.Duration
	// Errors counts socket errors, timeouts and non-2xx answers.
	Errors int64
	// CPU is the target's process tree's user+system seconds during the
	// run; PeakKiB its peak RSS (VmHWM) over the run, summed over the
	// tree. Both zero for the direct baseline.
	CPU     float64
	PeakKiB int64
	// Idle-connection runs: connections held, and the tree's RSS before
	// and after opening them.
	Conns                int
	RSSBeforeKiB, RSSKiB int64
}

// CPUPer10k is CPU seconds per 10,000 requests.
func (r Result) CPUPer10k() float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / float64(r.Requests) * 10000
}

// KiBPerConn is the RSS growth per idle connection.
func (r Result) KiBPerConn() float64 {
	if r.Conns == 0 {
		return 0
	}
	return float64(r.RSSKiB-r.RSSBeforeKiB) / float64(r.Conns)
}
