package preempt

import "fmt"

// ExportName is the export under which the interrupt global is found.
const ExportName = "waygate.interrupt"

// StartExport is the export under which the module's start function is
// found once its start section is removed: the host calls it right
// after instantiation, where a call can be interrupted, rather than
// letting it run inside instantiation, where none can.
const StartExport = "waygate.start"

// globals are the new globals' entries in the global section, both
// mutable i32 initialised to i32.const 0: the interrupt, then the tick
// counter of the loop heads (see check).
var globals = []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b}

// Instrument returns a copy of the Wasm binary bin (a core module,
// version 1) in which every loop traps at its head when the global
// exported as ExportName is not zero, and the number of loops so
// instrumented.
//
// Two globals (mut i32, initially 0) are appended to the module's own
// globals, so that no existing global index changes: the interrupt,
// whose index is the number of imported globals plus defined globals,
// and the tick counter after it. The global and export sections are
// created when the module has none, right after the sections that
// precede them. Every body gets the check (see check) right after the
// blocktype of each loop, and its size, and the code section's,
// re-encoded. A start section is removed and its function exported as
// StartExport. Custom sections named ".debug_*" (DWARF, whose code
// offsets no longer hold) are dropped, and with them custom sections
// without contents they would leave last (which wazero refuses); every
// other section is copied byte for byte.
//
// Errors wrap ErrUnsupported for an instruction or encoding the
// rewriter does not know or a module without a memory (the check's
// memory.grow needs one), ErrMalformed for a binary it cannot decode,
// and ErrExported when the module already exports ExportName or
// StartExport.
func Instrument(bin []byte) (out []byte, loops int, err error) {
	m, err := parseModule(bin)
	if err != nil {
		return nil, 0, err
	}
	if m.taken {
		return nil, 0, ErrExported
	}
	g := uint64(m.importedGlobals) + uint64(m.globals)
	if g+1 >= maxU32 || m.exports+1 >= maxU32 {
		return nil, 0, &decodeError{kind: ErrUnsupported, fn: -1, what: "module", cause: fmt.Errorf("too many globals or exports")}
	}
	chk := check(uint32(g))

	var bodies []body
	var at []int
	if m.code >= 0 {
		if bodies, at, err = walkCode(bin, m.sections[m.code], m.importedFuncs); err != nil {
			return nil, 0, err
		}
	}
	if m.memories == 0 {
		return nil, 0, &decodeError{kind: ErrUnsupported, fn: -1, what: "module", cause: fmt.Errorf("no memory, which the check's memory.grow needs")}
	}

	// A new global section goes right after the last section that
	// precedes it, before the custom sections that follow that one, and
	// a new export section right after the global section: so that a
	// custom section is followed by what followed it (wazero reads past
	// the end of a malformed name section into the next one).
	after := -1 // index of that section, or -1 for the header
	for k, s := range m.sections {
		if s.id != secCustom && rank[s.id] < rank[secGlobal] {
			after = k
		}
	}
	newGlobal, newExport := m.global < 0, m.export < 0
	appendNew := func(out []byte, k int) []byte {
		if newGlobal && k == after {
			out = appendGlobals(out, nil, 0)
		}
		if newExport && (!newGlobal && k == m.global || newGlobal && k == after) {
			out = appendExports(out, nil, 0, uint32(g), m)
		}
		return out
	}

	out = make([]byte, 0, len(bin)+len(at)*len(chk)+64)
	out = append(out, header...)
	out = appendNew(out, -1)
	for k, s := range m.sections {
		switch {
		case s.drop:
		case k == m.global:
			_, i, _ := readU32(bin, s.payload)
			out = appendGlobals(out, bin[i:s.end], m.globals)
		case k == m.export:
			_, i, _ := readU32(bin, s.payload)
			out = appendExports(out, bin[i:s.end], m.exports, uint32(g), m)
		case k == m.code:
			if out, err = appendCode(out, bin, s, bodies, at, chk); err != nil {
				return nil, 0, err
			}
		default:
			out = append(out, bin[s.start:s.end]...)
		}
		out = appendNew(out, k)
	}
	return out, len(at), nil
}

// appendGlobals appends a global section of the n entries in entries
// and the new globals.
func appendGlobals(out, entries []byte, n uint32) []byte {
	out = append(out, secGlobal)
	out = appendU32(out, uint32(sizeU32(n+2)+len(entries)+len(globals)))
	out = appendU32(out, n+2)
	out = append(out, entries...)
	return append(out, globals...)
}

// appendExports appends an export section of the n entries in entries,
// the export of global g as ExportName and, when m has a start
// function, its export as StartExport.
func appendExports(out, entries []byte, n, g uint32, m *module) []byte {
	added := appendExport(nil, ExportName, 0x03, g) // global
	n++
	if m.start >= 0 {
		added = appendExport(added, StartExport, 0x00, m.startFunc) // function
		n++
	}
	out = append(out, secExport)
	out = appendU32(out, uint32(sizeU32(n)+len(entries)+len(added)))
	out = appendU32(out, n)
	out = append(out, entries...)
	return append(out, added...)
}

// appendExport appends an export entry: its name, kind and index.
func appendExport(out []byte, name string, kind byte, index uint32) []byte {
	out = appendU32(out, uint32(len(name)))
	out = append(out, name...)
	out = append(out, kind)
	return appendU32(out, index)
}
