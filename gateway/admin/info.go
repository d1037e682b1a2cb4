package admin

import (
	"net/http"
	"runtime"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/proto"
)

func (s *Server) serverInfo(w http.ResponseWriter, _ *http.Request) {
	info := s.opts.Source.ServerInfo()
	if info == nil {
		info = &adminv3.ServerInfo{}
	} else {
		info = proto.Clone(info).(*adminv3.ServerInfo)
	}
	// The admin server owns the health-check and drain switches, so it
	// has the last word on the state.
	info.State = s.state()
	writeProto(w, info)
}

// memory maps the Go heap onto Envoy's tcmalloc figures: allocated is
// live heap, heap_size what the heap holds from the OS, pageheap_free the
// idle part not yet returned, pageheap_unmapped the part returned.
func (s *Server) memory(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	writeProto(w, &adminv3.Memory{
		Allocated:          m.HeapAlloc,
		HeapSize:           m.HeapSys,
		PageheapUnmapped:   m.HeapReleased,
		PageheapFree:       m.HeapIdle - m.HeapReleased,
		TotalThreadCache:   m.MCacheInuse,
		TotalPhysicalBytes: m.Sys - m.HeapReleased,
	})
}

// runtime answers as Envoy with no runtime layers: Waygate takes no
// runtime overrides.
func (s *Server) runtime(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{\n \"layers\": [],\n \"entries\": {}\n}\n"))
}
