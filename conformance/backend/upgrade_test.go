package backend

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2CUpgrade speaks the RFC 7540 section 3.2 upgrade by hand, as
// `curl --http2 http://...` does: no Go client implements it.
func TestH2CUpgrade(t *testing.T) {
	s := start(t, Options{Service: "reviews", Version: "v3"})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))

	// An empty SETTINGS payload encodes to an empty HTTP2-Settings value.
	req := "GET /reviews/0 HTTP/1.1\r\nHost: reviews\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
		"Upgrade: h2c\r\nHTTP2-Settings: \r\nEnd-User: jason\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}

	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, br)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	var body bytes.Buffer
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) { headers[f.Name] = f.Value })
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v (headers %v, body %q)", err, headers, body.String())
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if f.StreamID != 1 {
				t.Fatalf("headers on stream %d, want the upgraded stream 1", f.StreamID)
			}
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				t.Fatal(err)
			}
			done = f.StreamEnded()
		case *http2.DataFrame:
			body.Write(f.Data())
			done = f.StreamEnded()
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("stream ended by %v", f)
		}
	}
	if headers[":status"] != "200" || headers["x-version"] != "v3" {
		t.Fatalf("headers %v, want :status 200 from reviews v3", headers)
	}
	var rv Reviews
	if err := json.Unmarshal(body.Bytes(), &rv); err != nil {
		t.Fatalf("%v: %s", err, body.String())
	}
	if rv.Version != "v3" || rv.Stars != "red" {
		t.Errorf("reviews %+v, want v3 with red stars", rv)
	}

	// The upgraded connection left net/http's books at the hijack; Close
	// must still drop it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := fr.ReadFrame() // a GOAWAY may come first, then EOF
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the upgraded connection is still open after Close")
		}
		if err != nil {
			break
		}
	}
}

func TestIsH2CUpgrade(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.Header.Set("Upgrade", "h2c")
	r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
	if !isH2CUpgrade(r) {
		t.Fatal("upgrade request not recognized")
	}
	r.Header.Set("Connection", "Upgrade")
	if isH2CUpgrade(r) {
		t.Error("upgrade without HTTP2-Settings in Connection recognized")
	}
	if _, err := decodeSettings(strings.Repeat("A", 6) + "=="); err != nil {
		t.Errorf("padded settings rejected: %v", err)
	}
}
