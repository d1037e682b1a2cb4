package client

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"
)

func anyNamed(tag string) *anypb.Any { return &anypb.Any{TypeUrl: tag} }

// render shows a set as name=tag pairs, sorted.
func render(m map[string]*anypb.Any) string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k].GetTypeUrl())
	}
	return strings.Join(out, ",")
}

func TestSotwCandidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   string
		names []string
		held  map[string]*anypb.Any
		items []item
		want  string
	}{{
		name:  "listeners are the full state",
		typ:   lds,
		held:  map[string]*anypb.Any{"a": anyNamed("old"), "b": anyNamed("old")},
		items: []item{{name: "b", res: anyNamed("new")}, {name: "c", res: anyNamed("new")}},
		want:  "b=new,c=new",
	}, {
		name:  "listener heartbeat keeps the held body",
		typ:   lds,
		held:  map[string]*anypb.Any{"a": anyNamed("old"), "b": anyNamed("old")},
		items: []item{{name: "a"}},
		want:  "a=old",
	}, {
		name:  "routes merge into what is held",
		typ:   rds,
		names: []string{"a", "b"},
		held:  map[string]*anypb.Any{"a": anyNamed("old"), "b": anyNamed("old")},
		items: []item{{name: "b", res: anyNamed("new")}},
		want:  "a=old,b=new",
	}, {
		name:  "routes not subscribed are dropped, held or sent",
		typ:   rds,
		names: []string{"b"},
		held:  map[string]*anypb.Any{"a": anyNamed("old"), "b": anyNamed("old")},
		items: []item{{name: "c", res: anyNamed("new")}},
		want:  "b=old",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTypeState(tc.typ)
			s.names, s.held = tc.names, tc.held
			if got := render(s.sotwCandidate(tc.items)); got != tc.want {
				t.Fatalf("candidate = %s, want %s", got, tc.want)
			}
			if len(s.held) != len(tc.held) {
				t.Fatal("candidate modified the held set")
			}
		})
	}
}

func TestDeltaCandidate(t *testing.T) {
	s := newTypeState(eds)
	s.names = []string{"a", "b", "c"}
	s.held = map[string]*anypb.Any{"a": anyNamed("old"), "b": anyNamed("old")}
	s.versions = map[string]string{"a": "1", "b": "1"}
	set, vers := s.deltaCandidate([]item{
		{name: "c", version: "2", res: anyNamed("new")},
		{name: "b", version: "3"},                       // heartbeat
		{name: "x", version: "2", res: anyNamed("new")}, // not subscribed
	}, []string{"a", "missing"})
	if got := render(set); got != "b=old,c=new" {
		t.Errorf("set = %s", got)
	}
	if vers["b"] != "3" || vers["c"] != "2" || len(vers) != 2 {
		t.Errorf("versions = %v", vers)
	}
	if len(s.held) != 2 || s.versions["a"] != "1" {
		t.Error("candidate modified the held state")
	}
}

func TestSetNames(t *testing.T) {
	s := newTypeState(rds)
	added, removed := s.setNames([]string{"b", "a", "b"})
	if !slices.Equal(added, []string{"a", "b"}) || removed != nil || !slices.Equal(s.names, []string{"a", "b"}) {
		t.Fatalf("added %q removed %q names %q", added, removed, s.names)
	}
	if added, removed := s.setNames([]string{"a", "b"}); added != nil || removed != nil {
		t.Fatalf("unchanged names reported a change: %q %q", added, removed)
	}
	added, removed = s.setNames([]string{"c", "b"})
	if !slices.Equal(added, []string{"c"}) || !slices.Equal(removed, []string{"a"}) || !slices.Equal(s.names, []string{"b", "c"}) {
		t.Fatalf("added %q removed %q names %q", added, removed, s.names)
	}
}

func TestWithout(t *testing.T) {
	s := newTypeState(sds)
	handlers := map[string]*anypb.Any{"a": anyNamed("x"), "b": anyNamed("x")}
	s.held, s.versions = handlers, map[string]string{"a": "1", "b": "1"}
	if set, _ := s.without([]string{"z"}); set != nil {
		t.Fatalf("dropping what is not held gave %s", render(set))
	}
	set, vers := s.without([]string{"a", "z"})
	if render(set) != "b=x" || len(vers) != 1 || vers["b"] != "1" {
		t.Fatalf("set %s versions %v", render(set), vers)
	}
	if len(handlers) != 2 || len(s.versions) != 2 {
		t.Fatal("without modified the held maps")
	}
}
