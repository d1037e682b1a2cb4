package client

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"
)

// fixedNames accepts everything and always wants the same names.
type fixedNames []string

func (fixedNames) Apply(string, map[string]*anypb.Any) error { return nil }
func (f fixedNames) Names(string) []string                   { return f }

// TestStatusJSON pins the admin output's names and checks Status hands out
// copies the caller may change.
func TestStatusJSON(t *testing.T) {
	c := New(Options{Address: "127.0.0.1:15010"}, fixedNames{"r1"})
	c.updateNames(c.types[rds])
	c.rejected(lds, "7", "n9", errors.New("listener \"x\": bad"))
	st := c.Status()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"address":"127.0.0.1:15010"`, `"connected":false`, `"last_nack":{"version":"7","nonce":"n9","error":"listener \"x\": bad"`, `"names":["r1"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("status JSON %s lacks %s", b, want)
		}
	}
	st.Types[lds].LastNACK.Version = "changed"
	st.Types[rds].Names[0] = "changed"
	if again := c.Status(); again.Types[lds].LastNACK.Version != "7" || again.Types[rds].Names[0] != "r1" {
		t.Error("Status shares memory with the client")
	}
}
