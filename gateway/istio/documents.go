package istio

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// document is one YAML document of a file, cut at its "---" separator.
type document struct {
	text []byte
	// firstLine is the 1-based line of the file text starts at.
	firstLine int
}

// splitDocuments cuts a multi-document YAML file at its "---" lines.
// Cutting the text before parsing, instead of streaming the documents
// through one decoder, keeps a syntax error in one document from hiding
// every document after it.
func splitDocuments(data []byte) []document {
	var docs []document
	start, startLine, line := 0, 1, 1
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		}
		if pos > start && isSeparator(data[pos:next]) {
			docs = append(docs, document{text: data[start:pos], firstLine: startLine})
			start, startLine = pos, line
		}
		pos = next
		line++
	}
	return append(docs, document{text: data[start:], firstLine: startLine})
}

// isSeparator reports whether line is a YAML document marker: "---" at
// the start of a line, alone or followed by blanks.
func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := line[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parserProblems are the messages of the YAML parser (as opposed to its
// scanner). The library reports their line 0-based while it reports the
// scanner's 1-based; for an unclosed bracket it is the line the bracket
// opened on, which is the line to show.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found undefined tag handle":             true,
	"found incompatible YAML document":       true,
}

// syntaxError turns a YAML parser error about a document into the line of
// the file and the message without its "yaml: line N:" prefix.
func syntaxError(err error, doc document) (int, string) {
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		problem := msg[len(m[0]):]
		if parserProblems[problem] {
			n++
		}
		return doc.firstLine + n - 1, "invalid YAML: " + problem
	}
	return doc.firstLine, "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}
