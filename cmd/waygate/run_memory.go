package main

import (
	"os"
	"runtime/debug"
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
