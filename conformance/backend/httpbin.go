package backend

import (
	"strconv"
	"strings"
	"time"
)

// maxHTTPBinDelay is httpbin's own cap on /delay/<seconds>.
const maxHTTPBinDelay = 10 * time.Second

// httpbinControls gives the httpbin backend the two httpbin paths the
// Istio tasks call, /status/<code> and /delay/<seconds>, on top of the
// echo (which answers /get and /headers well enough). An explicit
// x-echo-* control still wins.
func httpbinControls(path string, c *controls) {
	if v, ok := strings.CutPrefix(path, "/status/"); ok && c.status == 0 {
		if n, err := strconv.Atoi(v); err == nil && n >= 200 && n <= 599 {
			c.status = n
		}
	}
	if v, ok := strings.CutPrefix(path, "/delay/"); ok && c.delay == 0 {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
			c.delay = min(time.Duration(f*float64(time.Second)), maxHTTPBinDelay)
		}
	}
}
