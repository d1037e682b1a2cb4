package preempt

import (
	"errors"
	"fmt"
)

// The errors of Instrument. Whatever it returns, the module can still
// run with wazero's own termination checks; ErrUnsupported says that
// it may well be valid, ErrMalformed that wazero will likely refuse
// it too.
var (
	// ErrUnsupported is returned, wrapped with the function index, the
	// byte offset in the module and the opcode, when the module uses an
	// instruction or encoding the rewriter does not know.
	ErrUnsupported = errors.New("preempt: unsupported instruction or encoding")
	// ErrMalformed is returned, wrapped with where, when the module
	// cannot be decoded: truncated, an integer too long, sections out
	// of order or of the wrong length.
	ErrMalformed = errors.New("preempt: malformed module")
	// ErrExported is returned when the module already exports
	// ExportName or StartExport, as an instrumented module does.
	ErrExported = errors.New("preempt: " + ExportName + " or " + StartExport + " is already exported")
)

// decodeError says where decoding stopped.
type decodeError struct {
	kind  error  // ErrUnsupported or ErrMalformed
	fn    int    // index of the function in the function index space, or -1
	off   int    // offset in the module
	what  string // the opcode or the part of the module
	cause error
}

func (e *decodeError) Error() string {
	s := e.kind.Error()
	if e.fn >= 0 {
		s += fmt.Sprintf(": function %d, offset %#x: %s", e.fn, e.off, e.what)
	} else {
		s += fmt.Sprintf(": offset %#x: %s", e.off, e.what)
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *decodeError) Unwrap() error { return e.kind }

// opError locates err, from decoding the immediates of the opcode at
// off, as unsupported when an opcode or type was unknown and as
// malformed otherwise.
func opError(err error, off int, format string, args ...any) error {
	kind := ErrMalformed
	if errors.Is(err, errUnknown) {
		kind = ErrUnsupported
		if err == errUnknown {
			err = nil
		}
	}
	return &decodeError{kind: kind, fn: -1, off: off, what: fmt.Sprintf(format, args...), cause: err}
}

// malformedAt locates a failure to decode what at off.
func malformedAt(off int, what string, err error) error {
	if de, ok := err.(*decodeError); ok {
		return de
	}
	kind := ErrMalformed
	if errors.Is(err, errUnknown) {
		kind = ErrUnsupported
	}
	return &decodeError{kind: kind, fn: -1, off: off, what: what, cause: err}
}

// inFunction adds the function index to a decodeError.
func inFunction(err error, fn int) error {
	if de, ok := err.(*decodeError); ok {
		de.fn = fn
	}
	return err
}
