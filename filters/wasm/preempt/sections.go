package preempt

import (
	"bytes"
	"fmt"
)

// The module level. Instrument copies most sections as they are and
// reads only what the new global and export depend on: how many
// functions and globals are imported (for the new global's index and
// function indices in errors), how many globals are defined, and which
// names are exported.

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// rank orders the non-custom sections as the binary format requires:
// the tag section goes between memory and global, data count between
// element and code. Zero is an unknown id.
var rank = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5,
	secTag: 6, secGlobal: 7, secExport: 8, secStart: 9, secElement: 10,
	secDataCount: 11, secCode: 12, secData: 13,
}

var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// section is one section of the module.
type section struct {
	id      byte
	start   int  // offset of the id
	payload int  // offset of the contents, after the size
	end     int  // offset after the contents
	drop    bool // not copied: see dropped
	empty   bool // a custom section with a name and no contents
}

// module is what Instrument needs to know of a module.
type module struct {
	sections        []section
	importedFuncs   uint32
	importedGlobals uint32
	globals         uint32 // defined in the global section
	exports         uint32 // in the export section
	taken           bool   // ExportName or StartExport is exported
	memories        uint32 // imported and defined
	global, export  int    // index in sections, or -1
	code            int    // index in sections, or -1
	start           int    // index in sections, or -1
	startFunc       uint32 // the start section's function
}

// parseModule splits b into sections and reads its imports, globals and
// exports.
func parseModule(b []byte) (*module, error) {
	if len(b) < len(header) || !bytes.Equal(b[:4], header[:4]) {
		return nil, malformedAt(0, "header", fmt.Errorf("not a Wasm binary"))
	}
	if !bytes.Equal(b[4:8], header[4:]) {
		return nil, &decodeError{kind: ErrUnsupported, fn: -1, off: 4, what: "header",
			cause: fmt.Errorf("version % x: only core modules of version 1", b[4:8])}
	}
	m := &module{global: -1, export: -1, code: -1, start: -1}
	last := 0
	for i := len(header); i < len(b); {
		s := section{id: b[i], start: i}
		size, j, err := readU32(b, i+1)
		if err != nil {
			return nil, malformedAt(i, "section size", err)
		}
		s.payload, s.end = j, j+int(size)
		if s.end > len(b) {
			return nil, malformedAt(i, fmt.Sprintf("section %d", s.id), errTruncated)
		}
		if s.id != secCustom {
			if int(s.id) >= len(rank) || rank[s.id] == 0 {
				return nil, malformedAt(i, fmt.Sprintf("section id %d", s.id), fmt.Errorf("unknown"))
			}
			if rank[s.id] <= last {
				return nil, malformedAt(i, fmt.Sprintf("section %d", s.id), fmt.Errorf("out of order"))
			}
			last = rank[s.id]
		}
		if err := m.read(b[:s.end], &s); err != nil {
			return nil, err
		}
		m.sections = append(m.sections, s)
		i = s.end
	}
	m.dropped()
	return m, nil
}

// dropped marks the sections Instrument leaves out: the custom
// sections of DWARF (".debug_*"), whose code offsets no longer hold,
// and, when those end the module, the custom sections without contents
// that they leave last, as wazero refuses a module ending with one (it
// reads the contents past the end).
func (m *module) dropped() {
	n := len(m.sections)
	if n == 0 || !m.sections[n-1].drop {
		return
	}
	for k := n - 1; k >= 0; k-- {
		s := &m.sections[k]
		switch {
		case s.drop:
		case s.empty:
			s.drop = true
		default:
			return
		}
	}
}

// read reads what m needs of section s, which ends at len(b).
func (m *module) read(b []byte, s *section) error {
	var err error
	switch s.id {
	case secCustom:
		var name []byte
		var i int
		if name, i, err = readName(b, s.payload); err != nil {
			return malformedAt(s.payload, "custom section name", err)
		}
		s.drop = bytes.HasPrefix(name, []byte(".debug_"))
		s.empty = i == s.end
	case secImport:
		err = m.readImports(b, s.payload)
	case secGlobal:
		m.global = len(m.sections)
		if m.globals, _, err = readU32(b, s.payload); err != nil {
			return malformedAt(s.payload, "global count", err)
		}
	case secExport:
		m.export = len(m.sections)
		err = m.readExports(b, s.payload)
	case secMemory:
		var n uint32
		if n, _, err = readU32(b, s.payload); err != nil {
			return malformedAt(s.payload, "memory count", err)
		}
		m.memories += n
	case secStart:
		// The start function becomes an export (see Instrument).
		m.start = len(m.sections)
		s.drop = true
		if m.startFunc, _, err = readU32(b, s.payload); err != nil {
			return malformedAt(s.payload, "start function", err)
		}
	case secCode:
		m.code = len(m.sections)
	}
	return err
}

// readName reads a name: a u32 length and as many bytes.
func readName(b []byte, i int) ([]byte, int, error) {
	n, i, err := readU32(b, i)
	if err != nil {
		return nil, i, err
	}
	if uint64(len(b)-i) < uint64(n) {
		return nil, len(b), errTruncated
	}
	return b[i : i+int(n)], i + int(n), nil
}

// readImports counts the imported functions and globals.
func (m *module) readImports(b []byte, i int) error {
	n, i, err := readU32(b, i)
	if err != nil {
		return malformedAt(i, "import count", err)
	}
	for k := uint32(0); k < n; k++ {
		at := i
		if _, i, err = readName(b, i); err == nil {
			_, i, err = readName(b, i)
		}
		if err == nil && i >= len(b) {
			err = errTruncated
		}
		if err != nil {
			return malformedAt(at, fmt.Sprintf("import %d", k), err)
		}
		kind := b[i]
		i++
		switch kind {
		case 0x00: // function: type index
			m.importedFuncs++
			i, err = skipLEB(b, i, maxLenU32)
		case 0x01: // table
			i, err = tableType(b, i)
		case 0x02: // memory
			m.memories++
			i, err = limits(b, i)
		case 0x03: // global: value type, mutability
			m.importedGlobals++
			if i, err = valType(b, i); err == nil {
				i, err = fixed(b, i, 1)
			}
		case 0x04: // tag: attribute, type index
			if i, err = fixed(b, i, 1); err == nil {
				i, err = skipLEB(b, i, maxLenU32)
			}
		default:
			err = fmt.Errorf("%w: import kind %#02x", errUnknown, kind)
		}
		if err != nil {
			return malformedAt(at, fmt.Sprintf("import %d", k), err)
		}
	}
	if i != len(b) {
		return malformedAt(i, "import section", fmt.Errorf("%d bytes left over", len(b)-i))
	}
	return nil
}

// tableType skips a table type, which wazero lets start with 0x40 0x00
// and end with an initializer expression.
func tableType(b []byte, i int) (int, error) {
	init := i+1 < len(b) && b[i] == 0x40 && b[i+1] == 0x00
	if init {
		i += 2
	}
	i, err := valType(b, i)
	if err != nil {
		return i, err
	}
	if i, err = limits(b, i); err != nil || !init {
		return i, err
	}
	return skipConstExpr(b, i)
}

// limits skips the limits of a table or memory: a flag, a minimum and,
// with flag bit 0, a maximum. Flag bit 1 is shared (threads); wider
// flags (64-bit memories) wazero does not support.
func limits(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, errTruncated
	}
	flag := b[i]
	if flag > 0x03 {
		return i, fmt.Errorf("%w: limits flag %#02x", errUnknown, flag)
	}
	i, err := skipLEB(b, i+1, maxLenU32)
	if err != nil || flag&0x01 == 0 {
		return i, err
	}
	return skipLEB(b, i, maxLenU32)
}

// readExports counts the exports and finds whether one is ExportName
// or StartExport.
func (m *module) readExports(b []byte, i int) error {
	n, i, err := readU32(b, i)
	if err != nil {
		return malformedAt(i, "export count", err)
	}
	m.exports = n
	for k := uint32(0); k < n; k++ {
		at := i
		var name []byte
		if name, i, err = readName(b, i); err == nil {
			// kind, index
			if i, err = fixed(b, i, 1); err == nil {
				i, err = skipLEB(b, i, maxLenU32)
			}
		}
		if err != nil {
			return malformedAt(at, fmt.Sprintf("export %d", k), err)
		}
		if string(name) == ExportName || string(name) == StartExport {
			m.taken = true
		}
	}
	if i != len(b) {
		return malformedAt(i, "export section", fmt.Errorf("%d bytes left over", len(b)-i))
	}
	return nil
}
