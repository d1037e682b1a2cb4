package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Waygate is built for.
const clockTicks = 100

// treePIDs lists root and its descendants: nginx and HAProxy serve from
// worker processes, so a proxy's cost is the sum over its process tree.
func treePIDs(root int) []int {
	parent := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		parent[st.ppid] = append(parent[st.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, parent[out[i]]...)
	}
	return out
}

type procStat struct {
	ppid         int
	utime, stime uint64
	// cutime and cstime are the CPU of children it has reaped: nginx's
	// and HAProxy's masters reap the workers a reload replaces, whose
	// own figures are gone by the end of the run.
	cutime, cstime uint64
}

// readStat parses /proc/<pid>/stat. The command name is in parentheses
// and may hold spaces, so fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is state (field 3): ppid is field 4, utime 14, stime 15,
	// cutime 16, cstime 17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat: %d fields", len(f))
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	cut, _ := strconv.ParseUint(f[13], 10, 64)
	cst, _ := strconv.ParseUint(f[14], 10, 64)
	return procStat{ppid: ppid, utime: ut, stime: st, cutime: cut, cstime: cst}, nil
}

// cpuSeconds is the user+system CPU time of a process tree so far,
// workers that have ended included.
func cpuSeconds(pids []int) float64 {
	var ticks uint64
	for _, p := range pids {
		if st, err := readStat(p); err == nil {
			ticks += st.utime + st.stime + st.cutime + st.cstime
		}
	}
	return float64(ticks) / clockTicks
}

// memKiB sums a /proc/<pid>/status field (VmRSS, VmHWM) over a tree, in
// KiB. Pages shared between nginx's master and workers are counted in
// each, as `ps` would.
func memKiB(pids []int, field string) int64 {
	var total int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		total += statusField(string(b), field)
	}
	return total
}

func statusField(status, field string) int64 {
	for _, line := range strings.Split(status, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		return v
	}
	return 0
}

// resetPeak restarts VmHWM at the current RSS (clear_refs "5"), so the
// peak of each run is its own rather than the process's lifetime peak.
// It needs to own the process or be root; without it the peak is the
// lifetime peak, which the results say.
func resetPeak(pids []int) bool {
	ok := true
	for _, p := range pids {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p), []byte("5"), 0); err != nil {
			ok = false
		}
	}
	return ok
}
