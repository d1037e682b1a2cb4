package main

import (
	"context"
	"os"
	"runtime/debug"
	"syscall"
	"time"
)

// keepStartupPagesEnv, set to 1, keeps the executable's pages that
// startup touched mapped (see settleMemory).
const keepStartupPagesEnv = "WAYGATE_KEEP_STARTUP_PAGES"

// settleMemory runs once, when the gateway serves its first
// configuration. Two things stay behind from startup that the idle
// process never uses again:
//
//   - the heap garbage of loading and translating the configuration
//     (the xDS snapshot's intermediate copies), returned to the system
//     at once rather than by the scavenger minutes later;
//   - the executable's code and read-only data that package
//     initialization touched: the protobuf descriptors of every Envoy
//     and Istio API, the Kubernetes API scheme, their init functions.
//     The kernel maps each page read (and its neighbours, fault-around)
//     into the process for good, and a Bookinfo gateway serving nothing
//     holds 45 MiB of the 119 MiB binary that way, three quarters of its
//     RSS. They are clean file pages: unmapping them loses nothing (the
//     page cache still has them; a page used again is mapped again on
//     its first access), and the RSS figure becomes what the gateway
//     uses while it serves.
func settleMemory() {
	debug.FreeOSMemory()
	if os.Getenv(keepStartupPagesEnv) != "1" {
		releaseExecutablePages()
	}
}

// idleTrimEnv sets how often trimWhenIdle looks (a Go duration; 30s by
// default, 0 turns it off).
const idleTrimEnv = "WAYGATE_IDLE_TRIM_INTERVAL"

// trimWhenIdle gives the executable's pages back each time the process
// goes idle after work. Serving a request maps the code it runs (and, by
// fault-around, its neighbours: 12 to 35 MiB after a handful of
// Bookinfo requests, depending on the page cache); they stay mapped
// once traffic stops. An interval in which the process used under 1% of
// a core counts as idle; the pages are released once per idle spell.
func trimWhenIdle(ctx context.Context) {
	if os.Getenv(keepStartupPagesEnv) == "1" {
		return
	}
	every := 30 * time.Second
	if v := os.Getenv(idleTrimEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return
		}
		every = d
	}
	t := time.NewTicker(every)
	defer t.Stop()
	last, trimmed := cpuTime(), true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := cpuTime()
		busy := now-last > every/100
		last = now
		switch {
		case busy:
			trimmed = false
		case !trimmed:
			releaseExecutablePages()
			trimmed = true
			// The release's own CPU does not make the next interval busy.
			last = cpuTime()
		}
	}
}

// cpuTime is the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
