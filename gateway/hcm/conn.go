package hcm

import (
	"context"

	"github.com/waygate/waygate/filters"
)

// Conn is what the listener learned of a downstream connection when it
// accepted it: the filter chain's HCM config and the connection's
// addresses and TLS state. A connection keeps the config it was accepted
// with; a listener update drains it rather than changing it under it, as
// Envoy does. Route tables, by contrast, are read per request.
type Conn struct {
	Config *Config
	Info   filters.Connection
}

type connKey struct{}

// WithConn returns ctx carrying c; the listener installs it through
// http.Server.ConnContext.
func WithConn(ctx context.Context, c *Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func connFrom(ctx context.Context) *Conn {
	c, _ := ctx.Value(connKey{}).(*Conn)
	return c
}
