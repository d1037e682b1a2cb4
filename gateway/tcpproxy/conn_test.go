package tcpproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/waygate/waygate/filters"
)

// holdUntil holds each side's data until it holds the byte mark (or the
// side ended), then passes it on; upper also rewrites what passes to
// upper case, to show the rewritten bytes are the ones delivered.
type holdUntil struct {
	mark  byte
	upper bool
}

func (h holdUntil) NewNetworkFilter(filters.NetworkConn) filters.NetworkFilter { return h }
func (holdUntil) OnNewConnection() filters.Status                              { return filters.Continue }
func (holdUntil) OnClose(filters.Side, bool)                                   {}
func (holdUntil) OnDone()                                                      {}

func (h holdUntil) OnData(_ filters.Side, data *filters.Buffer, end bool) filters.Status {
	if !end && bytes.IndexByte(data.Bytes(), h.mark) < 0 {
		return filters.StopAndBuffer
	}
	if h.upper {
		data.Set(asciiUpper(data.Bytes()))
	}
	return filters.Continue
}

// asciiUpper upper-cases ASCII letters only, so that it gives the same
// bytes whatever the chunks it is applied to.
func asciiUpper(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		if 'a' <= c && c <= 'z' {
			out[i] = c - 'a' + 'A'
		}
	}
	return out
}

// loopbackPair is a connected pair of TCP connections on loopback.
func loopbackPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// FuzzFilterConnKeepsBytes sends data in chunks of chunk bytes through
// two filters that hold it until a mark byte, both ways, and checks
// that each side receives exactly what went through the filters, in
// order, and then the end of stream.
func FuzzFilterConnKeepsBytes(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), byte('\n'), byte('o'), uint8(3))
	f.Add([]byte("no marks here"), byte('\n'), byte('\n'), uint8(1))
	f.Add([]byte(""), byte('x'), byte('y'), uint8(7))
	f.Add(bytes.Repeat([]byte("abc;"), 1000), byte(';'), byte('c'), uint8(200))
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, data []byte, mark1, mark2 byte, chunk uint8) {
	{
		// Longer inputs find nothing more, and each byte costs a
		// trip through real sockets.
		if len(data) > 8<<10 {
			data = data[:8<<10]
		}
		if chunk == 0 {
			chunk = 1
		}
		client, server := loopbackPair(t)
		fs := []filters.NetworkFactory{holdUntil{mark: mark1, upper: true}, holdUntil{mark: mark2}}
		conn := FilterConn(server, filters.Connection{}, fs, nil)
		if conn == nil {
			t.Fatal("FilterConn refused the connection")
		}
		defer conn.Close()
		deadline := time.Now().Add(10 * time.Second)
		client.SetDeadline(deadline)
		conn.SetDeadline(deadline)

		go func() {
			for rest := data; len(rest) > 0; {
				n := min(int(chunk), len(rest))
				if _, err := client.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
			client.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(conn)
		if err != nil {
			t.Fatalf("reading through the filters: %v", err)
		}
		if want := asciiUpper(data); !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes %.40q..., want %d bytes %.40q...", len(got), got, len(want), want)
		}

		// The way back passes the filters in reverse order.
		go func() {
			for rest := data; len(rest) > 0; {
				n := min(int(chunk), len(rest))
				if _, err := conn.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
			conn.(interface{ CloseWrite() error }).CloseWrite()
		}()
		back, err := io.ReadAll(client)
		if err != nil {
			t.Fatalf("reading what was written through the filters: %v", err)
		}
		if want := asciiUpper(data); !bytes.Equal(back, want) {
			t.Fatalf("client read %d bytes, want %d", len(back), len(want))
		}
	}
}

func TestFilterConnReadDeadline(t *testing.T) {
	_, server := loopbackPair(t)
	conn := FilterConn(server, filters.Connection{}, []filters.NetworkFactory{holdUntil{mark: '\n'}}, nil)
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := conn.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read returned %v, want a timeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 5*time.Second {
		t.Errorf("Read returned after %v", d)
	}
}
