//go:build race

package wasm

// The race detector slows the host down several times; a call deadline
// sized for production would then kill healthy instances.
func init() { raceEnabled = true }
