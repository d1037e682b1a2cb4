package hcm_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// startRawH2 starts a cleartext HTTP/2 backend on the frame layer, for
// what Go's HTTP/2 server hides: it keeps every field of a request's
// trailer section, announced in a trailer header or not. It answers
// each request "hello", with the trailers it got as X-Got-* headers and
// X-Proto: HTTP/2.0, as startTrailers does.
func startRawH2(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRawH2(c)
		}
	}()
	return ln.Addr().String()
}

func serveRawH2(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	fr := http2.NewFramer(c, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if fr.WriteSettings() != nil {
		return
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	// got holds each open stream's trailers, once its headers came.
	got := map[uint32]http.Header{}
	answer := func(id uint32) error {
		hbuf.Reset()
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		_ = enc.WriteField(hpack.HeaderField{Name: "x-proto", Value: "HTTP/2.0"})
		for k, vs := range got[id] {
			for _, v := range vs {
				_ = enc.WriteField(hpack.HeaderField{Name: "x-got-" + strings.ToLower(k), Value: v})
			}
		}
		delete(got, id)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true}); err != nil {
			return err
		}
		return fr.WriteData(id, true, []byte("hello"))
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() && fr.WriteSettingsAck() != nil {
				return
			}
		case *http2.PingFrame:
			if !f.IsAck() && fr.WritePing(true, f.Data) != nil {
				return
			}
		case *http2.MetaHeadersFrame:
			id := f.StreamID
			if _, open := got[id]; open {
				for _, hf := range f.RegularFields() {
					got[id].Add(hf.Name, hf.Value)
				}
			} else {
				got[id] = http.Header{}
			}
			if f.StreamEnded() && answer(id) != nil {
				return
			}
		case *http2.DataFrame:
			if n := uint32(len(f.Data())); n > 0 {
				_ = fr.WriteWindowUpdate(0, n)
				_ = fr.WriteWindowUpdate(f.StreamID, n)
			}
			if f.StreamEnded() && answer(f.StreamID) != nil {
				return
			}
		}
	}
}
