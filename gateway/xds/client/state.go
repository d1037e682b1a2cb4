package client

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/types/known/anypb"
)

// typeState is what the client holds for one type across streams: the last
// accepted set (the handler's current state), its version and the current
// subscription. Only the Run goroutine touches it.
type typeState struct {
	url      string
	wildcard bool
	// names is the sorted subscription of a named type.
	names []string
	// held is the last set passed to a successful Apply. It is never
	// modified in place: the handler may keep it.
	held map[string]*anypb.Any
	// versions holds per-resource versions (Delta only), sent back as
	// initial_resource_versions when a new stream starts.
	versions map[string]string
	// version is the last accepted version_info (system_version_info in
	// Delta), sent on every SotW request of this type.
	version string
}

func newTypeState(url string) *typeState {
	return &typeState{url: url, wildcard: isWildcard(url), held: map[string]*anypb.Any{}, versions: map[string]string{}}
}

// subscribed reports whether the handler wants name.
func (s *typeState) subscribed(name string) bool {
	if s.wildcard {
		return true
	}
	_, ok := slices.BinarySearch(s.names, name)
	return ok
}

// sotwCandidate merges a SotW response into the held set. Listener and
// cluster responses are the full state; for the other types a response
// carries only some of the subscribed resources, so the held ones stay.
// Resources nobody subscribed to are dropped.
func (s *typeState) sotwCandidate(items []item) map[string]*anypb.Any {
	out := make(map[string]*anypb.Any, len(s.held)+len(items))
	if !s.wildcard {
		for name, r := range s.held {
			if s.subscribed(name) {
				out[name] = r
			}
		}
	}
	for _, it := range items {
		if !s.subscribed(it.name) {
			continue
		}
		if it.res == nil {
			// A heartbeat keeps what is held.
			if r, ok := s.held[it.name]; ok {
				out[it.name] = r
			}
			continue
		}
		out[it.name] = it.res
	}
	return out
}

// deltaCandidate applies a Delta response's additions and removals to the
// held set and its versions.
func (s *typeState) deltaCandidate(items []item, removed []string) (map[string]*anypb.Any, map[string]string) {
	out := make(map[string]*anypb.Any, len(s.held)+len(items))
	vers := make(map[string]string, len(s.held)+len(items))
	for name, r := range s.held {
		if s.subscribed(name) {
			out[name] = r
			vers[name] = s.versions[name]
		}
	}
	for _, name := range removed {
		delete(out, name)
		delete(vers, name)
	}
	for _, it := range items {
		if !s.subscribed(it.name) {
			continue
		}
		if it.res == nil {
			if _, ok := out[it.name]; ok && it.version != "" {
				vers[it.name] = it.version
			}
			continue
		}
		out[it.name] = it.res
		vers[it.name] = it.version
	}
	return out, vers
}

// setNames replaces the subscription of a named type and returns the names
// added and removed.
func (s *typeState) setNames(want []string) (added, removed []string) {
	want = slices.Clone(want)
	slices.Sort(want)
	want = slices.Compact(want)
	for _, n := range want {
		if _, ok := slices.BinarySearch(s.names, n); !ok {
			added = append(added, n)
		}
	}
	for _, n := range s.names {
		if _, ok := slices.BinarySearch(want, n); !ok {
			removed = append(removed, n)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return nil, nil
	}
	s.names = want
	return added, removed
}

// without returns the held set and versions less names, or nil when none of
// names is held. The held maps are not modified: the handler has them.
func (s *typeState) without(names []string) (map[string]*anypb.Any, map[string]string) {
	if !slices.ContainsFunc(names, func(n string) bool { _, ok := s.held[n]; return ok }) {
		return nil, nil
	}
	held, vers := maps.Clone(s.held), maps.Clone(s.versions)
	for _, n := range names {
		delete(held, n)
		delete(vers, n)
	}
	return held, vers
}

// initialVersions is the Delta initial_resource_versions for a new stream.
func (s *typeState) initialVersions() map[string]string {
	if len(s.versions) == 0 {
		return nil
	}
	return maps.Clone(s.versions)
}
