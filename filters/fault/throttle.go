package fault

import (
	"strconv"
	"time"

	"github.com/waygate/waygate/filters"
)

// throttledFilter is the filter of a stream whose config has a
// response_rate_limit: only it routes the response body through the
// filter, so streams without one keep the chain's untouched body path.
type throttledFilter struct {
	*filter
}

// OnResponseBody holds each chunk until the stream's byte budget allows
// it. The pace is kept from the first byte, so the body as a whole goes
// at the configured KiB/s whatever the chunk sizes; Envoy cuts chunks
// into 1/16 s slices, which this API cannot, so a large chunk waits for
// its whole share and then goes at once.
func (t *throttledFilter) OnResponseBody(x *filters.Exchange, body *filters.Buffer, _ bool) filters.Status {
	if t.throttle == nil || body.Len() == 0 {
		return filters.Continue
	}
	if wait := t.throttle.take(time.Now(), body.Len()); wait > 0 && !sleep(x.Context, wait) {
		return filters.Stop
	}
	return filters.Continue
}

// setupThrottle decides once per stream whether its response is slowed.
// A header limit needs x-envoy-fault-throughput-response (KiB/s, > 0).
func (fl *filter) setupThrottle(x *filters.Exchange, c *Config) {
	r := c.rateLimit
	if r == nil {
		return
	}
	pct, kbps := r.pct, r.kbps
	if r.fromHeader {
		pct = pct.capped(x.Request.Header.Get(hdrThroughputPercent))
		n, err := strconv.ParseUint(x.Request.Header.Get(hdrThroughput), 10, 32)
		if err != nil || n == 0 {
			return
		}
		kbps = n
	}
	if !pct.draw() || !fl.activate(c) {
		return
	}
	fl.f.rateLimits.Inc()
	fl.throttle = &throttle{bytesPerSec: float64(kbps) * 1024}
}

// throttle paces one stream's response body.
type throttle struct {
	bytesPerSec float64
	start       time.Time
	sent        int64
}

// maxCredit is how much idle time a stream may bank: as Envoy's token
// bucket holds one second of tokens, a body that stalled upstream may
// then burst at most one second's worth.
const maxCredit = time.Second

// take accounts n more bytes and returns how long to wait before they may
// leave: the time the bytes sent so far are due at the configured rate.
func (t *throttle) take(now time.Time, n int) time.Duration {
	if t.start.IsZero() {
		t.start = now
	}
	if behind := now.Sub(t.due()); behind > maxCredit {
		t.start = t.start.Add(behind - maxCredit)
	}
	t.sent += int64(n)
	return t.due().Sub(now)
}

func (t *throttle) due() time.Time {
	return t.start.Add(time.Duration(float64(t.sent) / t.bytesPerSec * float64(time.Second)))
}
