package client

import "time"

// Status is a point-in-time copy of the client's view of the xDS
// conversation, for the admin /config_dump and `waygate proxy-status`. The
// JSON names are part of that admin output.
type Status struct {
	Address   string `json:"address"`
	NodeID    string `json:"node_id"`
	Delta     bool   `json:"delta"`
	Connected bool   `json:"connected"`
	// Since is when the current stream opened, or when the last one ended
	// while disconnected.
	Since time.Time `json:"since,omitzero"`
	// LastError is why the last stream ended or failed to open.
	LastError string `json:"last_error,omitempty"`
	// Types is keyed by type URL and holds every type the client
	// subscribes to.
	Types map[string]TypeStatus `json:"types"`
}

// TypeStatus describes one resource type.
type TypeStatus struct {
	// Version, Nonce and Time describe the last accepted response: its
	// version_info (system_version_info in Delta), its nonce and when it
	// was applied.
	Version string    `json:"version"`
	Nonce   string    `json:"nonce,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	// Resources is how many resources of this type the handler holds.
	Resources int `json:"resources"`
	// Names is the current subscription; nil means wildcard.
	Names []string `json:"names,omitempty"`
	// LastNACK is the most recent rejected response, nil if none was.
	LastNACK *NACK `json:"last_nack,omitempty"`
}

// NACK records a rejected response.
type NACK struct {
	Version string    `json:"version"`
	Nonce   string    `json:"nonce"`
	Error   string    `json:"error"`
	Time    time.Time `json:"time"`
}
