package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// fetchURL GETs a module from an http:// or https:// URL, retrying
// network errors and 5xx answers (but 501, 505 and 511, which will not
// change) with exponential backoff, as istio-agent does. A module
// served in a .tar or .gz (or .tar.gz) is taken out of it.
func (f *Fetcher) fetchURL(ctx context.Context, src Source, r Request) ([]byte, error) {
	client := &http.Client{Transport: f.transport(src.Host)}
	backoff := r.Backoff
	var last error
	attempt := 0
	for attempt < r.Attempts {
		attempt++
		b, retry, err := f.getOnce(ctx, client, src.URI)
		if err == nil {
			return unbox(b, f.opts.MaxSize)
		}
		last = err
		if !retry || attempt == r.Attempts {
			break
		}
		f.log.Debug("wasm module fetch failed; retrying", "uri", src.URI, "attempt", attempt, "error", err, "backoff", backoff)
		if err := sleep(ctx, backoff); err != nil {
			last = fmt.Errorf("%w (after %v)", err, last)
			break
		}
		backoff = min(2*backoff, r.MaxBackoff)
	}
	return nil, fmt.Errorf("GET %s: %w (%d attempts)", src.URI, last, attempt)
}

// getOnce is one GET; retry says whether another attempt may succeed.
func (f *Fetcher) getOnce(ctx context.Context, c *http.Client, uri string) (b []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		// A certificate that does not verify will not verify next time.
		var cv *tls.CertificateVerificationError
		return nil, ctx.Err() == nil && !errors.As(err, &cv), err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, retryable(resp.StatusCode), fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err = readLimited(resp.Body, f.opts.MaxSize)
	return b, ctx.Err() == nil && !errors.Is(err, errTooLarge), err
}

func retryable(code int) bool {
	switch code {
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported, http.StatusNetworkAuthenticationRequired:
		return false
	}
	return code >= 500
}

var errTooLarge = errors.New("module too large")

// readLimited reads all of r, failing past limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", errTooLarge, limit)
	}
	return b, nil
}

// unbox takes a module out of the gzip and tar wrappings it may come
// in: a gzip stream is inflated, a tar archive gives its first file.
// Anything else is returned as is, to be refused as not Wasm later.
func unbox(b []byte, limit int64) ([]byte, error) {
	for range 4 {
		switch {
		case isWasm(b):
			return b, nil
		case len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b:
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("gzip: %w", err)
			}
			if b, err = readLimited(zr, limit); err != nil {
				return nil, fmt.Errorf("gzip: %w", err)
			}
		case len(b) > 262 && string(b[257:262]) == "ustar":
			tr := tar.NewReader(bytes.NewReader(b))
			if _, err := tr.Next(); err != nil {
				return nil, fmt.Errorf("tar: %w", err)
			}
			var err error
			if b, err = readLimited(tr, limit); err != nil {
				return nil, fmt.Errorf("tar: %w", err)
			}
		default:
			return b, nil
		}
	}
	return b, nil
}
