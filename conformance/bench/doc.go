// Package bench is Waygate's side-by-side load harness: it starts one
// fast backend (nginx serving static files), Waygate, nginx, HAProxy and
// Caddy as reverse proxies to that same backend, drives each with the
// same load tool and settings in alternating rounds, and reports every
// figure as a ratio to nginx, to Caddy and to the backend reached
// directly.
//
// Figures are ratios against baselines measured in the same process tree
// on the same machine, never absolute promises: DESIGN.md states the
// speed Waygate aims at in those terms ("at least nginx's figure"), and a
// shared 2-core machine moves absolute numbers from one minute to the
// next. Alternating the targets within each round (direct, waygate,
// nginx, haproxy, caddy, then again) spreads that drift over all of them.
//
// Everything listens on loopback, every run is bounded by its duration,
// and every process the harness starts is stopped by it. The command is
// cmd/bench; results go to results/.
package bench
