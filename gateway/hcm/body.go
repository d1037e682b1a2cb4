package hcm

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/waygate/waygate/filters"
)

// errPayloadTooLarge ends a request whose buffered body outgrew the
// buffer limit: the downstream gets 413, as from Envoy.
var errPayloadTooLarge = errors.New("request body exceeds the buffer limit")

// bodyPipe is the request body as the router reads it: downstream chunks
// passed through every request body filter, in chain order. A filter that
// returns StopAndBuffer holds data until it continues or the body ends.
type bodyPipe struct {
	src     io.ReadCloser
	x       *filters.Exchange
	filters []filters.RequestBodyFilter
	held    []*filters.Buffer
	// trailers run after the body filters saw the end of a body that
	// has trailers.
	trailers []filters.RequestTrailersFilter
	limit    int
	chunk    []byte
	out      []byte
	eof      bool
	err      error
	// in and sent count the bytes read from the downstream and those
	// handed to the router, so prime can tell whether the filters kept
	// the body's length.
	in, sent int64
	// stopped is the filter that ended the exchange, if one did.
	stopped any
	mu      *sync.Mutex
	// panicked counts and logs a filter panic.
	panicked func(v any)
	// abort cancels the exchange's context once the body failed.
	abort context.CancelCauseFunc
	idle  *idleTimer
}

func newBodyPipe(src io.ReadCloser, x *filters.Exchange, fs []filters.RequestBodyFilter, limit int, mu *sync.Mutex) *bodyPipe {
	return &bodyPipe{src: src, x: x, filters: fs, held: make([]*filters.Buffer, len(fs)), limit: limit, mu: mu}
}

func (p *bodyPipe) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		if p.eof {
			return 0, io.EOF
		}
		p.step()
	}
	n := copy(b, p.out)
	p.out = p.out[n:]
	p.sent += int64(n)
	return n, nil
}

// step reads one downstream chunk and runs it through the filters.
func (p *bodyPipe) step() {
	if p.chunk == nil {
		p.chunk = make([]byte, 32<<10)
	}
	n, err := p.src.Read(p.chunk)
	p.in += int64(n)
	p.idle.touch()
	end := false
	if err == io.EOF {
		end = true
	} else if err != nil {
		p.err = err
		return
	}
	if n == 0 && !end {
		return
	}
	if err := p.run(p.chunk[:n], end); err != nil {
		if p.abort != nil {
			// The router may be waiting on the upstream's answer to a
			// body that will never be complete: cancel the attempt.
			p.abort(err)
		}
		if errors.Is(err, errPayloadTooLarge) && p.x.LocalReply() == nil {
			// The router may be reading this body already; a local
			// reply is how it learns to answer 413.
			p.x.SendLocalReply(filters.LocalReply{Status: http.StatusRequestEntityTooLarge, Body: "Payload Too Large", Details: detailsBodyTooLarge})
		}
		p.err = filters.ErrLocalReply
		return
	}
	if end {
		p.eof = true
	}
}

// prime runs the body filters before the router starts, until the first
// bytes are ready for the upstream or the body ended, and returns the
// Content-Length the upstream request should declare. A filter that
// buffers the whole body (StopAndBuffer until endStream) may rewrite it,
// so its length is only known at the end: sending the downstream's
// length with a rewritten body would corrupt the upstream exchange. When
// the filters stream and have kept the length so far, the downstream's
// length stands; otherwise the body goes chunked (-1).
func (p *bodyPipe) prime(declared int64) (int64, error) {
	for len(p.out) == 0 && !p.eof && p.err == nil {
		p.step()
	}
	switch {
	case p.err != nil:
		return 0, p.err
	case p.eof:
		return int64(len(p.out)), nil
	case declared >= 0 && p.in == int64(len(p.out)):
		return declared, nil
	}
	return -1, nil
}

// run passes one chunk down the filters. What comes out of the last one
// is ready for the router. It runs on the goroutine that sends the body
// upstream, so it holds the stream's lock against the response filters.
func (p *bodyPipe) run(data []byte, end bool) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Off the handler's goroutine no recover of the handler's applies:
	// a panicking filter would take the process down.
	defer func() {
		if v := recover(); v != nil {
			err = p.recovered(v)
		}
	}()
	for i, f := range p.filters {
		var b *filters.Buffer
		if p.held[i] != nil {
			p.held[i].Append(data)
			b = p.held[i]
		} else {
			b = filters.NewBuffer(data)
		}
		switch f.OnRequestBody(p.x, b, end) {
		case filters.Stop:
			p.stopped = f
			return filters.ErrLocalReply
		case filters.StopAndBuffer:
			if end {
				// Nothing more will come: what the filter holds goes on.
				data = b.Bytes()
				p.held[i] = nil
				continue
			}
			if p.held[i] == nil {
				p.held[i] = filters.NewBuffer(append([]byte(nil), b.Bytes()...))
			}
			if p.held[i].Len() > p.limit {
				p.stopped = f
				return errPayloadTooLarge
			}
			return nil
		default:
			data = b.Bytes()
			p.held[i] = nil
		}
	}
	if end && len(p.x.Request.Trailer) > 0 {
		for _, f := range p.trailers {
			if f.OnRequestTrailers(p.x) == filters.Stop {
				p.stopped = f
				return filters.ErrLocalReply
			}
		}
	}
	p.out = data
	return nil
}

// recovered turns a body filter's panic into the exchange's 500.
func (p *bodyPipe) recovered(v any) error {
	if v == http.ErrAbortHandler {
		return errAbort
	}
	if p.panicked != nil {
		p.panicked(v)
	}
	if p.x.LocalReply() == nil {
		p.x.SendLocalReply(filters.LocalReply{Status: http.StatusInternalServerError, Body: "filter panic", Details: detailsFilterPanic})
	}
	return filters.ErrLocalReply
}

func (p *bodyPipe) Close() error { return p.src.Close() }

// readAll drains the pipe into memory, bounded by the buffer limit; used
// when a header filter asked for the whole body before the request goes on.
func readAll(r io.Reader, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, errPayloadTooLarge
	}
	return b, nil
}
