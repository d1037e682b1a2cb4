package accesslog

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	grpcv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/filters"
)

func accessLog(t *testing.T, name string, cfg proto.Message, filter *accesslogv3.AccessLogFilter) *accesslogv3.AccessLog {
	t.Helper()
	a, err := anypb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &accesslogv3.AccessLog{Name: name, Filter: filter, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}
}

func statusAtLeast(code uint32) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
		StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
			Op: accesslogv3.ComparisonFilter_GE, Value: &corev3.RuntimeUInt32{DefaultValue: code, RuntimeKey: "access_log.min_status"},
		}},
	}}
}

func TestFileLogger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := FromProto(accessLog(t, "envoy.access_loggers.file", &filev3.FileAccessLog{
		Path: path,
		AccessLogFormat: &filev3.FileAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: "%RESPONSE_CODE% %REQ(:PATH)%\n"},
			}},
		}},
	}, statusAtLeast(500)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ok := exchange()
	l.Log(ok, end)
	failed := exchange()
	failed.Response.Status = 503

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				l.Log(failed, end)
			}
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800 (the 204 filtered out)", len(lines))
	}
	for _, line := range lines {
		if line != "503 /api/v1/locations?from=1" {
			t.Fatalf("garbled line %q", line)
		}
	}
}

// withStdout points os.Stdout at a pipe while fn builds a logger, and
// returns what the logger then writes.
func withStdout(t *testing.T, build func() *Logger, log func(*Logger)) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	l := build()
	os.Stdout = saved
	log(l)
	w.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStdoutLoggers(t *testing.T) {
	jsonFormat, _ := structpb.NewStruct(map[string]any{"code": "%RESPONSE_CODE%", "route": "%ROUTE_NAME%"})
	tests := []struct {
		name string
		cfg  proto.Message
		want string
	}{
		{"stdout json", &streamv3.StdoutAccessLog{AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: jsonFormat},
		}}}, `{"code":204,"route":"locations-route"}` + "\n"},
		{"stdout default", &streamv3.StdoutAccessLog{},
			`[2016-04-15T20:17:00.310Z] "POST /api/v1/locations?from=1 HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "10.0.2.1:80"` + "\n"},
		{"file on /dev/stdout, deprecated format", &filev3.FileAccessLog{Path: "/dev/stdout", AccessLogFormat: &filev3.FileAccessLog_Format{Format: "%PROTOCOL%\n"}}, "HTTP/2\n"},
		{"file json_format renders strings", &filev3.FileAccessLog{Path: "/dev/stdout", AccessLogFormat: &filev3.FileAccessLog_JsonFormat{JsonFormat: jsonFormat}},
			`{"code":"204","route":"locations-route"}` + "\n"},
		{"omit empty values", &streamv3.StdoutAccessLog{AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
			Format:          &corev3.SubstitutionFormatString_TextFormat{TextFormat: "[%UPSTREAM_LOCAL_ADDRESS%]\n"},
			OmitEmptyValues: true,
		}}}, "[]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withStdout(t, func() *Logger {
				l, err := FromProto(accessLog(t, "envoy.access_loggers.stdout", tt.cfg, nil))
				if err != nil {
					t.Fatal(err)
				}
				return l
			}, func(l *Logger) { l.Log(exchange(), end) })
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFromProtoErrors(t *testing.T) {
	tests := []struct {
		name string
		al   *accesslogv3.AccessLog
		want string
	}{
		{"unknown logger", accessLog(t, "grpc", &grpcv3.HttpGrpcAccessLogConfig{}, nil), "unsupported access logger envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig"},
		{"no typed config", &accesslogv3.AccessLog{Name: "x"}, `access_log "x" typed_config: required`},
		{"bad format", accessLog(t, "f", &filev3.FileAccessLog{Path: "/dev/stdout", AccessLogFormat: &filev3.FileAccessLog_Format{Format: "%BOGUS%"}}, nil), "unknown command operator %BOGUS%"},
		{"no path", accessLog(t, "f", &filev3.FileAccessLog{}, nil), "typed_config.path: required"},
		{"unopenable path", accessLog(t, "f", &filev3.FileAccessLog{Path: "/nonexistent-dir/x/access.log"}, nil), "typed_config.path"},
		{"formatter extensions", accessLog(t, "s", &streamv3.StderrAccessLog{AccessLogFormat: &streamv3.StderrAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
			Formatters: []*corev3.TypedExtensionConfig{{Name: "envoy.formatter.req_without_query"}},
		}}}, nil), "formatter extensions (envoy.formatter.req_without_query) are not supported"},
		{"unsupported filter", accessLog(t, "s", &streamv3.StdoutAccessLog{}, &accesslogv3.AccessLogFilter{
			FilterSpecifier: &accesslogv3.AccessLogFilter_TraceableFilter{TraceableFilter: &accesslogv3.TraceableFilter{}},
		}), `access_log "s" filter: unsupported filter`},
		{"and with one filter", accessLog(t, "s", &streamv3.StdoutAccessLog{}, &accesslogv3.AccessLogFilter{
			FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{AndFilter: &accesslogv3.AndFilter{Filters: []*accesslogv3.AccessLogFilter{statusAtLeast(1)}}},
		}), "and_filter.filters: want at least 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromProto(tt.al)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestNewLogger checks the logger a caller builds from a format and a
// writer, as the gateway does for its own defaults.
func TestNewLogger(t *testing.T) {
	f, err := CompileJSON(map[string]string{"id": "%REQ(X-REQUEST-ID)%"})
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	l := New(f, w)
	go func() {
		l.Log(exchange(), end)
		l.Log(&filters.Exchange{}, end)
		w.Close()
	}()
	sc := bufio.NewScanner(r)
	var ids []any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m["id"])
	}
	if len(ids) != 2 || ids[0] != "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" || ids[1] != nil {
		t.Errorf("ids = %v", ids)
	}
	// The reader is gone: entries are counted as lost, never an error to
	// the request.
	r.Close()
	l.Log(exchange(), end)
	if n := l.WriteFailures(); n != 1 {
		t.Errorf("WriteFailures = %d, want 1", n)
	}
}
