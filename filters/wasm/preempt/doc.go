// Package preempt rewrites a WebAssembly module so that the host can
// stop a call that runs too long without wazero's own termination
// checks.
//
// wazero stops a guest looping forever only with
// RuntimeConfig.WithCloseOnContextDone, which costs a goroutine for
// every call into Wasm and an exit from native code to Go at every loop
// iteration. Instrument instead adds two mutable i32 globals to the
// module, an exported interrupt and a tick counter, and at the head of
// every loop a check:
//
//	loop <blocktype>
//	  if $interrupt: unreachable
//	  $tick += 1
//	  if $tick & 0xffff == 0: memory.grow 0 (drop the result)
//	  ...
//
// A watchdog on another goroutine stops a runaway call by setting the
// interrupt (api.MutableGlobal.Set(1)); the call returns with the
// unreachable trap at its next loop iteration. A call that never loops
// ends by itself, so the loop heads are the only places to check. The
// compiler loads a global afresh at a loop header, which has two
// predecessors, so the store from the other goroutine is seen.
//
// The memory.grow of zero pages changes nothing but leaves compiled
// code for Go, every 65,536 iterations. Go cannot preempt a goroutine
// in compiled Wasm, which has no Go safe point: without such exits, a
// collection started while a guest spins would wait for it forever,
// stopping every other goroutine, and with as many spinning guests as
// Ps the watchdog itself would never run. At an exit the goroutine is
// preempted if the runtime asked for it. A module without a memory is
// not rewritten (the check needs one; Proxy-Wasm and http-wasm guests
// all have one).
//
// A start function would run inside instantiation, before the host
// holds the instance and can interrupt it: its section is removed and
// the function exported as StartExport, for the host to call first.
//
// The rewriter decodes each function body instruction by instruction,
// the way wazero v1.12 does, so that no immediate is taken for an
// opcode. An instruction or encoding it does not know fails with
// ErrUnsupported: the host then keeps wazero's termination checks for
// that module.
package preempt
