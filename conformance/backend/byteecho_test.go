package backend

import (
	"io"
	"net"
	"testing"
)

// TestByteEcho checks that bytes come back unchanged, and that the
// server closes once the client has closed its side.
func TestByteEcho(t *testing.T) {
	s, err := StartByteEcho("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := "raw \x00 bytes, no line\r"
	if _, err := io.WriteString(c, want); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q and the server's close", got, err, want)
	}
	if s.Port() == 0 {
		t.Fatal("no port")
	}
}
