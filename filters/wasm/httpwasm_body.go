package wasm

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Body kinds.
const (
	hwRequestBody = iota
	hwResponseBody
)

// hwReadBody reads the next bytes of a body. The request body is pulled
// from the downstream, with the call's deadline paused meanwhile; with
// buffer_request on, what the guest reads still goes upstream. The
// response body is readable in handle_response with buffer_response.
func hwReadBody(ctx context.Context, m api.Module, stack []uint64) {
	v, s := hwStreamOf(ctx, "read_body")
	kind, buf, limit := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if limit == 0 {
		panic(hwTrap("read_body with buf_limit 0"))
	}
	dst, ok := m.Memory().Read(buf, limit)
	if !ok {
		panic(hwTrap("out of memory reading the body"))
	}
	switch kind {
	case hwRequestBody:
		if s.afterNext {
			s.mustBeforeNextOr(featureBufferRequest, "read the request body")
			n := copy(dst, s.reqAfter)
			s.reqAfter = s.reqAfter[n:]
			stack[0] = hwEOFLen(len(s.reqAfter) == 0, n)
			return
		}
		stack[0] = s.readRequest(v, dst)
	case hwResponseBody:
		if !s.afterNext {
			stack[0] = hwEOFLen(true, 0)
			return
		}
		n := copy(dst, s.body[s.bodyOff:])
		s.bodyOff += n
		stack[0] = hwEOFLen(s.bodyOff == len(s.body), n)
	default:
		panic(hwTrap("unknown body kind"))
	}
}

var errHWBodyTooLarge = errors.New("request body larger than the host buffers")

func hwEOFLen(eof bool, n int) uint64 { return b2u(eof)<<32 | uint64(n) }

// readRequest fills dst from the downstream body. A read error (the
// client went away) ends the body for the guest and the stream after
// the call, instead of trapping: a client must not kill an instance.
func (s *hwStream) readRequest(v *hwVM, dst []byte) uint64 {
	if s.reqEOF || s.reqErr != nil || s.x.RequestBody == nil {
		return hwEOFLen(true, 0)
	}
	s.reqTouched = true
	v.deadline.disarm()
	n, err := s.readClient(dst, hwBodyWait*v.pool.opts.CallTimeout)
	v.deadline.arm(v.pool.opts.CallTimeout)
	if errors.Is(err, io.EOF) {
		s.reqEOF, err = true, nil
	}
	if err != nil {
		s.reqErr = err
		return hwEOFLen(true, 0)
	}
	if s.features&featureBufferRequest != 0 {
		if len(s.reqRead)+n > hwMaxBody {
			// The client's doing, not the guest's: the stream gets 413
			// after the call, the instance lives on.
			s.reqErr = errHWBodyTooLarge
			return hwEOFLen(true, 0)
		}
		s.reqRead = append(s.reqRead, dst[:n]...)
	}
	return hwEOFLen(s.reqEOF, n)
}

// drainRequest reads what is left of the request body from the client
// into the read-ahead buffer, so that the request trailers, which
// follow the body, are in place. The guest's reads and the upstream
// take the body from that buffer, so nothing of it is lost; the
// buffer_request bound applies, and a client that stalls or goes away
// ends the stream after the call, as when the guest reads.
func (s *hwStream) drainRequest() {
	if s.reqDrained || s.reqEOF || s.reqErr != nil || s.x.RequestBody == nil {
		return
	}
	s.reqDrained = true
	v := s.vm
	rest := append([]byte(nil), s.pending...)
	s.pending = nil
	v.deadline.disarm()
	defer v.deadline.arm(v.pool.opts.CallTimeout)
	// readClient answers what comes after rest once rest is read: EOF,
	// or, for a fail-open stream after an error, the client's body.
	defer func() { s.pending = rest }()
	chunk := make([]byte, hwReadAhead)
	for {
		n, err := s.readClient(chunk, hwBodyWait*v.pool.opts.CallTimeout)
		rest = append(rest, chunk[:n]...)
		if len(s.reqRead)+len(rest) > hwMaxBody {
			s.reqErr = errHWBodyTooLarge
			return
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			s.reqErr = err
			return
		}
	}
}

// hwBodyWait, times the call timeout, bounds how long read_body waits
// for the client to send more: the instance serves no other stream
// meanwhile, so a stalled client gets 408 rather than stall it.
const hwBodyWait = 10

var errHWBodyStalled = errors.New("client stalled sending the request body")

type hwReadResult struct {
	n   int
	err error
}

// readClient reads from the request body what the client has sent, up
// to len(dst) bytes, waiting at most wait for it. The read runs in a
// goroutine of its own, into a buffer of the stream's (a read given up
// on must never write into the guest's memory later), and reads ahead
// so that a guest reading in small chunks costs one wait per chunk of
// the client's, not one per call.
func (s *hwStream) readClient(dst []byte, wait time.Duration) (int, error) {
	if len(s.pending) == 0 && s.pendingErr == nil {
		if cap(s.readBuf) < max(len(dst), hwReadAhead) {
			s.readBuf = make([]byte, max(len(dst), hwReadAhead))
		}
		buf := s.readBuf[:cap(s.readBuf)]
		done := make(chan hwReadResult, 1)
		body := s.x.RequestBody
		go func() {
			n, err := body.Read(buf)
			done <- hwReadResult{n, err}
		}()
		t := time.NewTimer(wait)
		select {
		case r := <-done:
			t.Stop()
			s.pending, s.pendingErr = buf[:r.n], r.err
		case <-t.C:
			// The goroutine still owns buf; the stream ends now.
			s.readBuf = nil
			return 0, errHWBodyStalled
		}
	}
	n := copy(dst, s.pending)
	s.pending = s.pending[n:]
	if len(s.pending) > 0 {
		return n, nil
	}
	err := s.pendingErr
	s.pendingErr = nil
	if err != nil && err != io.EOF {
		return n, err
	}
	if err == io.EOF {
		// Keep answering EOF.
		s.pendingErr = io.EOF
	}
	return n, err
}

// hwReadAhead is the least a read from the client asks for.
const hwReadAhead = 16 << 10

// hwWriteBody writes to a body: the first write of a call replaces it.
// The request body before next; the response body before next (it
// leads the upstream's), or in handle_response with buffer_response.
func hwWriteBody(ctx context.Context, m api.Module, stack []uint64) {
	_, s := hwStreamOf(ctx, "write_body")
	b := hwRead(m, uint32(stack[1]), uint32(stack[2]), "body")
	switch uint32(stack[0]) {
	case hwRequestBody:
		s.mustBeforeNext("write the request body")
		if !s.reqWrote {
			s.reqWrote, s.reqWritten = true, nil
		}
		s.reqWritten = append(s.reqWritten, b...)
	case hwResponseBody:
		if !s.afterNext {
			if !s.respWrote {
				s.respWrote, s.respBody = true, nil
			}
			s.respBody = append(s.respBody, b...)
			return
		}
		s.mustBeforeNextOr(featureBufferResponse, "write the response body")
		if !s.bodyNew {
			s.bodyNew, s.bodyOut = true, nil
		}
		s.bodyOut = append(s.bodyOut, b...)
	default:
		panic(hwTrap("unknown body kind"))
	}
}
