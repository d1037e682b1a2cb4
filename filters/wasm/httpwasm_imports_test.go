package wasm

import (
	"net/textproto"
	"strings"
	"testing"
)

// TestImportsModule checks the detection of the ABI from the module's
// import section, on the test guests of both ABIs and on hand-made
// modules.
func TestImportsModule(t *testing.T) {
	// header is the magic and version of a Wasm 1.0 module.
	header := "\x00asm\x01\x00\x00\x00"
	// importSection holds one import of each kind: a function from
	// http_handler, a table, a memory with a maximum and a global.
	body := "\x04" +
		"\x03env\x05table\x01\x70\x00\x01" +
		"\x03env\x06memory\x02\x01\x01\x02" +
		"\x03env\x01g\x03\x7f\x00" +
		"\x0chttp_handler\x03log\x00\x00"
	importSection := "\x02" + string(rune(len(body))) + body
	tests := []struct {
		name    string
		code    func(t *testing.T) []byte
		want    bool
		wantErr bool
	}{
		{"http-wasm guest", func(t *testing.T) []byte { return mustRead(t, pluginPath["httpwasm"]) }, true, false},
		{"Proxy-Wasm plugin", func(t *testing.T) []byte { return mustRead(t, pluginPath["examples"]) }, false, false},
		{"every import kind", func(*testing.T) []byte { return []byte(header + "\x00\x03\x01ab" + importSection) }, true, false},
		{"no sections", func(*testing.T) []byte { return []byte(header) }, false, false},
		{"not wasm", func(*testing.T) []byte { return []byte("#!/bin/sh\necho hi\n") }, false, true},
		{"section past the end", func(*testing.T) []byte { return []byte(header + "\x02\x7f\x01") }, false, true},
		{"truncated import", func(*testing.T) []byte { return []byte(header + "\x02\x05\x01\x0chttp") }, false, true},
		{"unknown import kind", func(*testing.T) []byte { return []byte(header + "\x02\x07\x01\x01a\x01b\x09\x00") }, false, true},
		{"overlong integer", func(*testing.T) []byte { return []byte(header + "\x02\x86\x80\x80\x80\x80\x00") }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := importsModule(tt.code(t), httpHandlerModule)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("importsModule = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzImportsModule checks that no input makes the import reader panic
// or loop, and that it agrees with itself on a module that parses.
func FuzzImportsModule(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x13\x01\x0chttp_handler\x03log\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x06\x01\x01a\x01b\x02\x05"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, code []byte) {
		a, errA := importsModule(code, httpHandlerModule)
		b, errB := importsModule(code, httpHandlerModule)
		if a != b || (errA == nil) != (errB == nil) {
			t.Fatalf("two answers for one module: %v %v, %v %v", a, errA, b, errB)
		}
		if a && errA != nil {
			t.Fatalf("found the import and failed: %v", errA)
		}
	})
}

// TestCanonicalName checks the header name canonicalization against
// net/textproto's.
func TestCanonicalName(t *testing.T) {
	for _, name := range []string{"x-wasm", "X-WASM", "content-type", "host", "a", "-x-", "x--y", "www-authenticate", "x_under_score", strings.Repeat("long-", 20)} {
		if got, want := canonicalName([]byte(name)), textproto.CanonicalMIMEHeaderKey(name); got != want {
			t.Errorf("canonicalName(%q) = %q, want %q", name, got, want)
		}
	}
}
