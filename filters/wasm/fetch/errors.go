package fetch

import "errors"

// ErrNotFetched marks a module that could not be fetched: the server or
// registry did not answer, answered an error, timed out, or served
// something whose digest is not the one asked for. A caller can tell it
// from a config error (a bad URL or sha256, an unusable pull secret)
// with errors.Is: istio-agent serves a plugin it cannot fetch, when no
// previous version runs, with an allow-all or deny-all filter instead
// of refusing the config.
var ErrNotFetched = errors.New("wasm module not fetched")

// Error is a failed fetch of URI. It reads as the cause, is
// ErrNotFetched, and unwraps to the cause (a *ChecksumError among them).
type Error struct {
	URI string
	Err error
}

func (e *Error) Error() string        { return e.Err.Error() }
func (e *Error) Unwrap() error        { return e.Err }
func (e *Error) Is(target error) bool { return target == ErrNotFetched }

// notFetched marks err, from fetching uri, as ErrNotFetched, unless it
// says the request itself is wrong.
func notFetched(uri string, err error) error {
	var se *PullSecretError
	var ce *ChecksumError
	if err == nil || errors.As(err, &se) || (errors.As(err, &ce) && ce.Got == "") {
		return err
	}
	return &Error{URI: uri, Err: err}
}
