package filters

import "sync/atomic"

var connectionIDs atomic.Uint64

// NewConnectionID returns a connection ID no connection of the gateway
// had before, so that every filter (HTTP or network) of a connection
// reads the same Envoy connection.id.
func NewConnectionID() uint64 { return connectionIDs.Add(1) }
