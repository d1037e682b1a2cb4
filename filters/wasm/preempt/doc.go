// Package preempt rewrites a WebAssembly module so that the host can
// stop a call that runs too long without wazero's own termination
// checks.
//
// wazero stops a guest looping forever only with
// RuntimeConfig.WithCloseOnContextDone, which costs a goroutine for
// every call into Wasm and an exit from native code to Go at every loop
// iteration. Instrument instead adds one exported mutable i32 global to
// the module and, at the head of every loop, a test of that global that
// traps when it is not zero:
//
//	loop <blocktype>
//	  global.get $interrupt
//	  if
//	    unreachable
//	  end
//	  ...
//
// A watchdog on another goroutine stops a runaway call by setting the
// global (api.MutableGlobal.Set(1)); the call returns with the
// unreachable trap at its next loop iteration. A call that never loops
// ends by itself, so the loop heads are the only places to check. The
// compiler loads the global afresh at a loop header, which has two
// predecessors, so the store from the other goroutine is seen.
//
// The check alone does not make a spinning guest safe to leave running
// until the watchdog acts. Go cannot preempt a goroutine in compiled
// Wasm, which never reaches a Go safe point between the checks: a
// stop-the-world phase of the garbage collector started meanwhile
// waits for the guest to return, and stops every other goroutine,
// the watchdog included, so a guest that loops forever freezes the
// process at the next collection. wazero's own checks leave compiled
// code for Go at every loop iteration, which is what lets the world
// stop. A host that drops them needs the guest to reach Go now and then
// by other means (such as a counter at the loop heads that calls into
// Go every so many iterations).
//
// The rewriter decodes each function body instruction by instruction,
// the way wazero v1.12 does, so that no immediate is taken for an
// opcode. An instruction or encoding it does not know fails with
// ErrUnsupported: the host then keeps wazero's termination checks for
// that module.
package preempt
