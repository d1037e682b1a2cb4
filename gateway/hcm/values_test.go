package hcm

import (
	"net/http"
	"testing"
)

func TestValuesDoNotOverlap(t *testing.T) {
	var vs values
	h := http.Header{}
	for i, k := range []string{"A", "B", "C", "D", "E", "F"} {
		h[k] = vs.one(string(rune('a' + i)))
	}
	h.Add("A", "a2") // must not write over B's value
	h["C"][0] = "c!"
	want := map[string]string{"A": "a,a2", "B": "b", "C": "c!", "D": "d", "E": "e", "F": "f"}
	for k, v := range want {
		got := ""
		for i, s := range h[k] {
			if i > 0 {
				got += ","
			}
			got += s
		}
		if got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}
