package client

import "time"

// Status is a point-in-time copy of the client's view of the xDS
// conversation, for the admin /config_dump and `waygate proxy-status`.
type Status struct {
	Address   string
	NodeID    string
	Delta     bool
	Connected bool
	// Since is when the current stream opened, or when the last one ended
	// while disconnected.
	Since time.Time
	// LastError is why the last stream ended or failed to open.
	LastError string
	// Types is keyed by type URL and holds every type the client
	// subscribes to.
	Types map[string]TypeStatus
}

// TypeStatus describes one resource type.
type TypeStatus struct {
	// Version, Nonce and Time describe the last accepted response: its
	// version_info (system_version_info in Delta), its nonce and when it
	// was applied.
	Version string
	Nonce   string
	Time    time.Time
	// Resources is how many resources of this type the handler holds.
	Resources int
	// Names is the current subscription; nil means wildcard.
	Names []string
	// LastNACK is the most recent rejected response, nil if none was.
	LastNACK *NACK
}

// NACK records a rejected response.
type NACK struct {
	Version string
	Nonce   string
	Error   string
	Time    time.Time
}
