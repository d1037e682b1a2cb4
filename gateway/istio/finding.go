package istio

import (
	"strconv"
	"strings"
)

// Severity says whether a finding stops a resource from being used.
type Severity int

const (
	// Error marks a resource the control plane must not use.
	Error Severity = iota
	// Warning marks a resource that is used but probably not as meant.
	Warning
	// Info is a note, such as a skipped document of another API group.
	Info
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	case Info:
		return "info"
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// Finding is one problem found while loading or validating configuration.
// It carries everything a user needs to find the mistake: the file and
// line, the resource, and the field path inside it.
type Finding struct {
	Severity Severity
	// File is the file the resource was read from, "" for Kubernetes.
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Resource is the resource concerned; zero for a document that could
	// not be identified.
	Resource Key
	// Path is the field path, such as spec.http[0].route[1].weight.
	Path    string
	Message string
}

// String formats the finding the way compilers do, so editors can jump
// to it: "bookinfo.yaml:12: VirtualService default/reviews:
// spec.http[0].route[1].weight: weights sum to 90, must be 100".
func (f Finding) String() string {
	var b strings.Builder
	if f.File != "" {
		b.WriteString(f.File)
		if f.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(f.Line))
		}
		b.WriteString(": ")
	}
	if f.Resource != (Key{}) {
		b.WriteString(f.Resource.String())
		b.WriteString(": ")
	}
	if f.Path != "" {
		b.WriteString(f.Path)
		b.WriteString(": ")
	}
	b.WriteString(f.Message)
	return b.String()
}

// HasErrors reports whether any finding is an Error.
func HasErrors(findings []Finding) bool {
	for _, f := range findings {
		if f.Severity == Error {
			return true
		}
	}
	return false
}
