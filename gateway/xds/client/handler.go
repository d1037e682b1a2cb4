package client

import "google.golang.org/protobuf/types/known/anypb"

// Handler applies resources. The client calls it from one goroutine, in the
// order responses arrive.
type Handler interface {
	// Apply receives, for one type URL, the complete current set of
	// resources of that type by name.
	//
	// In SotW mode, for LDS and CDS the response is the full set; for RDS,
	// EDS, SDS and ECDS the client merges the response into what it holds and
	// drops names no longer subscribed. In Delta mode the client keeps the
	// set from added/removed resources.
	//
	// A non-nil error NACKs the update: the error text becomes error_detail
	// (google.rpc.Status, code INVALID_ARGUMENT) and the client keeps its
	// previous set for that type (the handler keeps serving its previous
	// state).
	//
	// The map belongs to the handler once passed: the client never modifies
	// it afterwards, so the handler may keep it as its own state. Successive
	// sets share the *anypb.Any of unchanged resources, which nobody may
	// modify.
	Apply(typeURL string, resources map[string]*anypb.Any) error

	// Names returns the resource names the handler wants for typeURL: nil
	// for wildcard (LDS, CDS); for RDS, EDS, SDS and ECDS the names
	// referenced by the accepted listeners and clusters. The client calls it after every
	// successful Apply and updates subscriptions (new request with the
	// changed resource_names) when the set changed. Held resources whose
	// names were removed are dropped at once with an Apply of the
	// remaining set, since the server will send nothing more about them.
	Names(typeURL string) []string
}
