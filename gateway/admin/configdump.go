package admin

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// configDump serves /config_dump with Envoy's query parameters:
//
//   - include_eds adds the EndpointsConfigDump;
//   - resource=<repeated field> (dynamic_active_clusters, static_listeners,
//     ...) returns the elements of that field, each as one config;
//   - mask=<paths> (comma-separated field paths) keeps only those fields
//     of each config, or of each resource when resource is set;
//   - name_regex=<re> keeps only the resources whose name matches.
func (s *Server) configDump(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	_, eds := q["include_eds"]
	var nameRE *regexp.Regexp
	if v := q.Get("name_regex"); v != "" {
		var err error
		if nameRE, err = regexp.Compile(v); err != nil {
			text(w, http.StatusBadRequest, fmt.Sprintf("Error while parsing name_regex from %s: %v\n", v, err))
			return
		}
	}
	var mask [][]string
	if v := q.Get("mask"); v != "" {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				mask = append(mask, strings.Split(p, "."))
			}
		}
	}
	dump := s.opts.Source.ConfigDump(eds)
	if dump == nil {
		dump = &adminv3.ConfigDump{}
	}
	out, err := filterDump(dump, q.Get("resource"), mask, nameRE)
	if err != nil {
		text(w, http.StatusNotFound, err.Error()+"\n")
		return
	}
	writeProto(w, out)
}

// filterDump applies resource, mask and name_regex to a config dump,
// leaving dump itself untouched.
func filterDump(dump *adminv3.ConfigDump, resource string, mask [][]string, nameRE *regexp.Regexp) (*adminv3.ConfigDump, error) {
	if resource == "" && mask == nil && nameRE == nil {
		return dump, nil
	}
	out := &adminv3.ConfigDump{}
	found := false
	for _, a := range dump.GetConfigs() {
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("config dump entry %s: %v", a.GetTypeUrl(), err)
		}
		if resource == "" {
			if nameRE != nil {
				keepNamed(m.ProtoReflect(), nameRE)
			}
			if mask != nil {
				trim(m.ProtoReflect(), mask)
			}
			packed, err := anypb.New(m)
			if err != nil {
				return nil, err
			}
			out.Configs = append(out.Configs, packed)
			continue
		}
		fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(resource))
		if fd == nil || !fd.IsList() || fd.Message() == nil {
			continue
		}
		found = true
		list := m.ProtoReflect().Get(fd).List()
		for i := 0; i < list.Len(); i++ {
			item := list.Get(i).Message()
			if nameRE != nil && !nameRE.MatchString(resourceName(item)) {
				continue
			}
			if mask != nil {
				trim(item, mask)
			}
			packed, err := anypb.New(item.Interface())
			if err != nil {
				return nil, err
			}
			out.Configs = append(out.Configs, packed)
		}
	}
	if resource != "" && !found {
		return nil, fmt.Errorf("resource %q is not a repeated field of any config dump (try dynamic_active_clusters, static_listeners, dynamic_route_configs, ...)", resource)
	}
	return out, nil
}

// keepNamed removes, from every repeated message field of a config dump,
// the resources whose name does not match re.
func keepNamed(m protoreflect.Message, re *regexp.Regexp) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !fd.IsList() || fd.Message() == nil {
			return true
		}
		list := v.List()
		n := 0
		for i := 0; i < list.Len(); i++ {
			if item := list.Get(i); re.MatchString(resourceName(item.Message())) {
				list.Set(n, item)
				n++
			}
		}
		list.Truncate(n)
		return true
	})
}

// resourceName finds the name of a config dump resource: its own name
// field (DynamicListener, secrets), or the name of the resource it wraps
// in an Any (DynamicCluster.cluster, DynamicRouteConfig.route_config,
// DynamicEndpointConfig.endpoint_config, whose name is cluster_name).
func resourceName(m protoreflect.Message) string {
	fields := m.Descriptor().Fields()
	for _, n := range []protoreflect.Name{"name", "cluster_name"} {
		if fd := fields.ByName(n); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			if s := m.Get(fd).String(); s != "" {
				return s
			}
		}
	}
	var name string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.IsList() || fd.IsMap() || fd.Message() == nil {
			return true
		}
		inner := v.Message()
		if a, ok := inner.Interface().(*anypb.Any); ok {
			u, err := a.UnmarshalNew()
			if err != nil {
				return true
			}
			inner = u.ProtoReflect()
		}
		name = resourceName(inner)
		return name == ""
	})
	return name
}

// trim keeps only the fields of m named by paths (each a field path split
// at dots), as Envoy's FieldMask trimming does. It descends into Any
// values, so resource=dynamic_active_clusters&mask=cluster.name works.
func trim(m protoreflect.Message, paths [][]string) {
	var clear []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		var sub [][]string
		keep, all := false, false
		for _, p := range paths {
			if len(p) == 0 || p[0] != string(fd.Name()) {
				continue
			}
			keep = true
			if len(p) == 1 {
				all = true
			} else {
				sub = append(sub, p[1:])
			}
		}
		switch {
		case !keep:
			clear = append(clear, fd)
		case all || fd.IsList() || fd.IsMap() || fd.Message() == nil:
		default:
			trimMessage(v.Message(), sub)
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
}

func trimMessage(m protoreflect.Message, paths [][]string) {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		trim(m, paths)
		return
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		return
	}
	trim(inner.ProtoReflect(), paths)
	if b, err := proto.Marshal(inner); err == nil {
		a.Value = b
	}
}
