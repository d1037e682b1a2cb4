package backend

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

func TestTCPEcho(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		in   string
		want string
	}{
		{"prefix from version", Options{Version: "one"}, "Sun Feb 13 10:42:20 UTC 2022\n", "one Sun Feb 13 10:42:20 UTC 2022\n"},
		{"prefix option", Options{Version: "v2", Prefix: "two"}, "hello\n", "two hello\n"},
		{"every line", Options{Prefix: "one"}, "a\nb\n\nc\n", "one a\none b\none \none c\n"},
		{"last line without newline", Options{Prefix: "one"}, "a\nb", "one a\none b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := StartTCPEcho(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tt.in); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).CloseWrite() // as nc does when its input ends
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if s.Connections() != 1 {
				t.Errorf("Connections = %d, want 1", s.Connections())
			}
		})
	}
}

func TestTCPEchoAnswersLineByLine(t *testing.T) {
	s, err := StartTCPEcho(Options{Prefix: "one"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"first\n", "second\n"} {
		io.WriteString(c, line)
		got, err := r.ReadString('\n')
		if err != nil || got != "one "+line {
			t.Fatalf("got %q, %v; want %q before the connection ends", got, err, "one "+line)
		}
	}
	s.Close() // drops the open connection
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("connection still open after Close")
	}
}

func TestTCPEchoNeedsAPrefix(t *testing.T) {
	if _, err := StartTCPEcho(Options{}); err == nil {
		t.Error("started without a prefix")
	}
}
