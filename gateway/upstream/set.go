package upstream

import "context"

// Set is the cluster set of one snapshot. A request reads its Set once,
// when it starts, and finishes on it even if a new snapshot arrives.
type Set interface {
	Cluster(name string) *Cluster
}

type setKey struct{}

// WithSet returns ctx carrying s, for the router filter.
func WithSet(ctx context.Context, s Set) context.Context {
	return context.WithValue(ctx, setKey{}, s)
}

// SetFrom returns the Set carried by ctx, or nil.
func SetFrom(ctx context.Context) Set {
	s, _ := ctx.Value(setKey{}).(Set)
	return s
}
