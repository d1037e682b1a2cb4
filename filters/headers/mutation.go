package headers

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/filters/matcher"
)

// mutation is one compiled mutation_rules.v3.HeaderMutation: exactly one
// of remove, add and removeMatch is set.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/common/mutation_rules/v3/mutation_rules.proto#config-common-mutation-rules-v3-headermutation
type mutation struct {
	remove      string // canonical name
	add         *Option
	removeMatch *matcher.String
}

// mutations is an ordered list: a later mutation sees what an earlier one
// did, as Envoy applies them.
type mutations []mutation

func compileMutations(ms []*mutationv3.HeaderMutation, field string) (mutations, error) {
	out := make(mutations, 0, len(ms))
	for i, m := range ms {
		path := fmt.Sprintf("%s[%d]", field, i)
		switch a := m.GetAction().(type) {
		case *mutationv3.HeaderMutation_Remove:
			if err := checkName(a.Remove); err != nil {
				return nil, fmt.Errorf("%s.remove: %w", path, err)
			}
			out = append(out, mutation{remove: textproto.CanonicalMIMEHeaderKey(a.Remove)})
		case *mutationv3.HeaderMutation_Append:
			o, err := CompileOption(a.Append)
			if err != nil {
				return nil, fmt.Errorf("%s.append.%w", path, err)
			}
			out = append(out, mutation{add: &o})
		case *mutationv3.HeaderMutation_RemoveOnMatch_:
			sm, err := matcher.CompileString(a.RemoveOnMatch.GetKeyMatcher())
			if err != nil {
				return nil, fmt.Errorf("%s.remove_on_match.key_matcher: %w", path, err)
			}
			out = append(out, mutation{removeMatch: &sm})
		default:
			return nil, fmt.Errorf("%s: one of remove, append, remove_on_match must be set", path)
		}
	}
	return out, nil
}

// apply mutates h (and the request's authority when authority is not
// nil).
func (ms mutations) apply(h http.Header, authority *string, x *filters.Exchange) {
	for i := range ms {
		m := &ms[i]
		switch {
		case m.add != nil:
			m.add.apply(h, authority, x)
		case m.removeMatch != nil:
			for k := range h {
				if m.removeMatch.Match(strings.ToLower(k)) {
					delete(h, k)
				}
			}
		default:
			delete(h, m.remove)
		}
	}
}
