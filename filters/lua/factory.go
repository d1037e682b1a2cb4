package lua

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

const (
	// TypeURL is the filter's config type.
	TypeURL = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
	// PerRouteTypeURL is the per-route config type.
	PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"
	// FilterName is the name the filter reads its per-route config under.
	FilterName = "envoy.filters.http.lua"
)

func init() {
	filters.Register(TypeURL, build)
	filters.RegisterRouteConfig(PerRouteTypeURL, buildRoute)
}

func build(cfg proto.Message, env filters.Env) (filters.Factory, error) {
	pb, ok := cfg.(*luav3.Lua)
	if !ok {
		return nil, fmt.Errorf("lua: config is %T, want Lua", cfg)
	}
	return New(pb, env)
}

// Factory holds the compiled scripts of one Lua filter.
type Factory struct {
	env filters.Env
	// def is the default script (default_source_code or inline_code);
	// nil when there is none, and the filter then runs only on routes
	// naming a script.
	def *script
	// named are source_codes, for routes naming one.
	named map[string]*script
}

// New compiles a Lua config. A script that does not parse is an error
// naming its field, as Envoy refuses it.
func New(pb *luav3.Lua, env filters.Env) (*Factory, error) {
	f := &Factory{env: env, named: map[string]*script{}}
	var err error
	switch {
	case pb.GetDefaultSourceCode() != nil:
		if f.def, err = compileSource(pb.GetDefaultSourceCode(), "default_source_code"); err != nil {
			return nil, err
		}
	case pb.GetInlineCode() != "": //nolint:staticcheck // the deprecated field is what most EnvoyFilters use.
		if f.def, err = compileScript(pb.GetInlineCode(), "inline_code"); err != nil { //nolint:staticcheck
			return nil, err
		}
	}
	for name, ds := range pb.GetSourceCodes() {
		if f.named[name], err = compileSource(ds, "source_codes["+name+"]"); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// routeConfig is a compiled LuaPerRoute.
type routeConfig struct {
	disabled bool
	name     string
	source   *script
}

func buildRoute(cfg proto.Message) (any, error) {
	pb, ok := cfg.(*luav3.LuaPerRoute)
	if !ok {
		return nil, fmt.Errorf("lua: per-route config is %T, want LuaPerRoute", cfg)
	}
	rc := &routeConfig{disabled: pb.GetDisabled(), name: pb.GetName()}
	if ds := pb.GetSourceCode(); ds != nil {
		s, err := compileSource(ds, "source_code")
		if err != nil {
			return nil, err
		}
		rc.source = s
	}
	return rc, nil
}

// NewFilter makes the stream's filter; the script is picked when the
// request headers arrive, by the route then matched (filters before
// this one may have changed it).
func (f *Factory) NewFilter(*filters.Exchange) any { return &filter{f: f} }

// scriptFor is the script of the stream's route: a per-route source or
// name, else the default; nil when the route disables the filter or
// there is no script.
func (f *Factory) scriptFor(x *filters.Exchange) *script {
	s := f.def
	if r := x.MatchedRoute(); r != nil {
		if rc, ok := r.PerFilterConfig(FilterName).(*routeConfig); ok {
			switch {
			case rc.disabled:
				return nil
			case rc.source != nil:
				s = rc.source
			case rc.name != "":
				if s = f.named[rc.name]; s == nil && x.Log != nil {
					x.Log.Warn("lua: the route names a script the filter does not have", "name", rc.name)
				}
			}
		}
	}
	return s
}

// script is a compiled script and the states that have run it.
type script struct {
	name  string
	proto *glua.FunctionProto
	// states are idle Lua states that have run proto, kept (not a
	// sync.Pool, which drops them at each GC) so that a script's globals
	// live on as in Envoy's per-worker states.
	states chan *glua.LState
}

// maxIdleStates bounds the idle states a script keeps.
var maxIdleStates = 2 * runtime.GOMAXPROCS(0)

func compileSource(ds *corev3.DataSource, field string) (*script, error) {
	var code string
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		code = s.InlineString
	case *corev3.DataSource_InlineBytes:
		code = string(s.InlineBytes)
	case *corev3.DataSource_Filename:
		b, err := os.ReadFile(s.Filename)
		if err != nil {
			return nil, fmt.Errorf("%s.filename: %v", field, err)
		}
		code = string(b)
	default:
		return nil, fmt.Errorf("%s: inline_string, inline_bytes or filename is required", field)
	}
	return compileScript(code, field)
}

func compileScript(code, field string) (*script, error) {
	chunk, err := parse.Parse(strings.NewReader(code), field)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	p, err := glua.Compile(chunk, field)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	s := &script{name: field, proto: p, states: make(chan *glua.LState, maxIdleStates)}
	// The top level runs once here, so that a script failing as it
	// loads is refused with the config rather than failing each request.
	L, err := s.get()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, scriptError(err))
	}
	s.put(L)
	return s, nil
}
