package preempt

import "fmt"

// The code section: where the loops are. Each body is walked once to
// find them; the rewritten section is then written with each body's
// size grown by its checks.

// body is one function body of the code section.
type body struct {
	start, end int // the locals and instructions, after the size
	loops      int // loop heads in it
}

// walkCode finds the loop heads of every body of the code section s,
// whose first function has index firstFunc, and returns the bodies and
// the offsets where checks go, in order.
func walkCode(b []byte, s section, firstFunc uint32) ([]body, []int, error) {
	b = b[:s.end]
	n, i, err := readU32(b, s.payload)
	if err != nil {
		return nil, nil, malformedAt(s.payload, "code count", err)
	}
	// A body takes at least 2 bytes: do not trust n to size slices.
	bodies := make([]body, 0, min(int(n), (s.end-i)/2))
	at := make([]int, 0, (s.end-i)/256)
	for k := uint32(0); k < n; k++ {
		fn := int(firstFunc) + int(k)
		size, start, err := readU32(b, i)
		if err != nil {
			return nil, nil, inFunction(malformedAt(i, "body size", err), fn)
		}
		end := start + int(size)
		if end > len(b) {
			return nil, nil, inFunction(malformedAt(i, "body", errTruncated), fn)
		}
		j, err := locals(b[:end], start)
		if err != nil {
			return nil, nil, inFunction(malformedAt(start, "locals", err), fn)
		}
		before := len(at)
		if at, err = walkBody(b, j, end, at); err != nil {
			return nil, nil, inFunction(err, fn)
		}
		bodies = append(bodies, body{start: start, end: end, loops: len(at) - before})
		i = end
	}
	if i != len(b) {
		return nil, nil, malformedAt(i, "code section", fmt.Errorf("%d bytes left over", len(b)-i))
	}
	return bodies, at, nil
}

// locals skips the declarations of locals that start a body: a vector
// of counts and value types.
func locals(b []byte, i int) (int, error) {
	n, i, err := readU32(b, i)
	if err != nil {
		return i, err
	}
	for k := uint32(0); k < n; k++ {
		if i, err = skipLEB(b, i, maxLenU32); err != nil {
			return i, err
		}
		if i, err = valType(b, i); err != nil {
			return i, err
		}
	}
	return i, nil
}

// check is the code that goes at the head of each loop, g being the
// interrupt global and g+1 the tick counter: trap when the interrupt is
// set, and every 65,536 iterations leave compiled code for Go through
// memory.grow 0 (which changes nothing).
//
//	global.get g
//	if (empty)
//	  unreachable
//	end
//	global.get g+1  i32.const 1  i32.add  global.set g+1
//	global.get g+1  i32.const 0xffff  i32.and  i32.eqz
//	if (empty)
//	  i32.const 0  memory.grow 0  drop
//	end
//
// The exit to Go is what keeps a guest looping forever from stopping
// the process: Go cannot preempt a goroutine in compiled Wasm, so a
// collection would wait on it forever, as would the watchdog that sets
// the interrupt once every P runs such a guest. At an exit to Go, the
// goroutine is preempted if the runtime asked it to be. A tight loop
// costs about a third more per iteration (1.33 ns against 1.01 ns
// measured), against 26 ns with wazero's own termination checks.
func check(g uint32) []byte {
	t := g + 1
	c := appendU32([]byte{0x23}, g)
	c = append(c, 0x04, 0x40, 0x00, 0x0b)
	c = appendU32(append(c, 0x23), t)
	c = append(c, 0x41, 0x01, 0x6a)
	c = appendU32(append(c, 0x24), t)
	c = appendU32(append(c, 0x23), t)
	c = append(c, 0x41, 0xff, 0xff, 0x03, 0x71, 0x45)
	return append(c, 0x04, 0x40, 0x41, 0x00, 0x40, 0x00, 0x1a, 0x0b)
}

// appendCode appends the code section with a copy of check at each
// offset in at, bodies being the bodies of the section s in b.
func appendCode(out, b []byte, s section, bodies []body, at []int, chk []byte) ([]byte, error) {
	n, _, _ := readU32(b, s.payload)
	size := uint64(sizeU32(n))
	for _, f := range bodies {
		fs := uint64(f.end-f.start) + uint64(f.loops)*uint64(len(chk))
		if fs > maxU32 {
			return nil, &decodeError{kind: ErrUnsupported, fn: -1, off: f.start, what: "body", cause: fmt.Errorf("too large once instrumented")}
		}
		size += uint64(sizeU32(uint32(fs))) + fs
	}
	if size > maxU32 {
		return nil, &decodeError{kind: ErrUnsupported, fn: -1, off: s.start, what: "code section", cause: fmt.Errorf("too large once instrumented")}
	}
	out = append(out, secCode)
	out = appendU32(out, uint32(size))
	out = appendU32(out, n)
	for _, f := range bodies {
		out = appendU32(out, uint32(f.end-f.start+f.loops*len(chk)))
		p := f.start
		for _, q := range at[:f.loops] {
			out = append(out, b[p:q]...)
			out = append(out, chk...)
			p = q
		}
		out = append(out, b[p:f.end]...)
		at = at[f.loops:]
	}
	return out, nil
}

const maxU32 = 1<<32 - 1
