// Package dump reads text dumps of xDS resources: a sequence of
// resources, each either JSON with an "@type" key or protobuf text with
// no type marker, as Istio's debug tooling prints what istiod generates
// (../../../../shared/xds-samples holds two). The text form names no
// type, so each block is tried against the xDS resource types and the
// one it parses as, strictly, wins.
package dump

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	// Extension types the dumps embed in Any fields, so prototext and
	// protojson can resolve them.
	_ "github.com/waygate/waygate/gateway/xds/extensions"
)

// candidates are the resource types a text block may be.
var candidates = []func() proto.Message{
	func() proto.Message { return &clusterv3.Cluster{} },
	func() proto.Message { return &listenerv3.Listener{} },
	func() proto.Message { return &routev3.RouteConfiguration{} },
	func() proto.Message { return &endpointv3.ClusterLoadAssignment{} },
	func() proto.Message { return &tlsv3.Secret{} },
}

// Parse returns the resources of a dump in order. Errors give the line a
// failing block starts at.
func Parse(data []byte) ([]proto.Message, error) {
	blocks, err := split(data)
	if err != nil {
		return nil, err
	}
	out := make([]proto.Message, 0, len(blocks))
	for _, b := range blocks {
		m, err := parseBlock(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", b.line, err)
		}
		out = append(out, m)
	}
	return out, nil
}

type block struct {
	line int
	json bool
	text string
}

// split cuts a dump into blocks: a JSON block runs from a line "{" to the
// next line "}"; a text block runs until a blank line or a JSON block.
func split(data []byte) ([]block, error) {
	var out []block
	var cur *block
	var buf strings.Builder
	flush := func() {
		if cur != nil && strings.TrimSpace(buf.String()) != "" {
			cur.text = buf.String()
			out = append(out, *cur)
		}
		cur = nil
		buf.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil && cur.json:
			buf.WriteString(line + "\n")
			if line == "}" {
				flush()
			}
		case line == "{":
			flush()
			cur = &block{line: n, json: true}
			buf.WriteString(line + "\n")
		case strings.TrimSpace(line) == "":
			flush()
		default:
			if cur == nil {
				cur = &block{line: n}
			}
			buf.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil && cur.json {
		return nil, fmt.Errorf("line %d: JSON resource is not closed", cur.line)
	}
	flush()
	return out, nil
}

func parseBlock(b block) (proto.Message, error) {
	if b.json {
		var a anypb.Any
		if err := protojson.Unmarshal([]byte(b.text), &a); err != nil {
			return nil, err
		}
		return a.UnmarshalNew()
	}
	var errs []string
	for _, mk := range candidates {
		m := mk()
		err := prototext.Unmarshal([]byte(b.text), m)
		if err == nil {
			return m, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", m.ProtoReflect().Descriptor().Name(), err))
	}
	return nil, fmt.Errorf("not a known xDS resource: %s", strings.Join(errs, "; "))
}
