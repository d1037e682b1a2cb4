package hcm

import (
	"errors"
	"io"

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
	limit   int
	chunk   []byte
	out     []byte
	eof     bool
	err     error
}

func newBodyPipe(src io.ReadCloser, x *filters.Exchange, fs []filters.RequestBodyFilter, limit int) *bodyPipe {
	return &bodyPipe{src: src, x: x, filters: fs, held: make([]*filters.Buffer, len(fs)), limit: limit}
}

func (p *bodyPipe) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		if p.eof {
			return 0, io.EOF
		}
		if p.chunk == nil {
			p.chunk = make([]byte, 32<<10)
		}
		n, err := p.src.Read(p.chunk)
		end := false
		if err == io.EOF {
			end = true
		} else if err != nil {
			p.err = err
			return 0, err
		}
		if n == 0 && !end {
			continue
		}
		if err := p.run(p.chunk[:n], end); err != nil {
			p.err = err
			return 0, err
		}
		if end {
			p.eof = true
		}
	}
	n := copy(b, p.out)
	p.out = p.out[n:]
	return n, nil
}

// run passes one chunk down the filters. What comes out of the last one
// is ready for the router.
func (p *bodyPipe) run(data []byte, end bool) error {
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
				return errPayloadTooLarge
			}
			return nil
		default:
			data = b.Bytes()
			p.held[i] = nil
		}
	}
	p.out = data
	return nil
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
