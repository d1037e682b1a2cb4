package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/filters"
)

// Logger writes one entry per exchange that passes its filter.
type Logger struct {
	name   string
	format *Format
	filter filterFunc // nil logs everything
	out    *lineWriter
	closer io.Closer // the file FromProto opened, if any
}

// lineWriter serializes whole entries onto one writer: each entry is one
// Write call under the lock, so entries of concurrent streams never
// interleave.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	failed atomic.Uint64
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// New returns a Logger writing every entry in format to w.
func New(format *Format, w io.Writer) *Logger {
	return &Logger{format: format, out: &lineWriter{w: w}}
}

// Name is the access log's config name.
func (l *Logger) Name() string { return l.name }

// Log writes the entry for x, which ended at end, if the filter lets it
// through. Formatting happens outside the lock.
func (l *Logger) Log(x *filters.Exchange, end time.Time) {
	if l.filter != nil && !l.filter(x, end) {
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := l.format.Append((*bp)[:0], x, end)
	l.out.mu.Lock()
	if _, err := l.out.w.Write(b); err != nil {
		l.out.failed.Add(1)
	}
	l.out.mu.Unlock()
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
}

// WriteFailures counts the entries lost to write errors (a full disk, a
// closed pipe), for the gateway to export as Envoy's
// filesystem.write_failed; a logger never blocks or fails a request.
func (l *Logger) WriteFailures() uint64 { return l.out.failed.Load() }

// Close closes the file the logger opened; loggers on the standard
// streams close nothing.
func (l *Logger) Close() error {
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// FromProto compiles an AccessLog config: envoy.access_loggers.file
// (FileAccessLog; /dev/stdout and /dev/stderr are the process' streams,
// any other path is opened for appending), envoy.access_loggers.stdout
// and envoy.access_loggers.stderr (StdoutAccessLog, StderrAccessLog),
// with their filter.
func FromProto(al *accesslogv3.AccessLog) (*Logger, error) {
	l := &Logger{name: al.GetName()}
	wrap := func(field string, err error) error {
		return fmt.Errorf("access_log %q %s: %w", al.GetName(), field, err)
	}
	if al.GetFilter() != nil {
		f, err := compileFilter(al.GetFilter())
		if err != nil {
			return nil, wrap("filter", err)
		}
		l.filter = f
	}
	if al.GetTypedConfig() == nil {
		return nil, wrap("typed_config", errors.New("required (envoy.access_loggers.file, stdout or stderr)"))
	}
	cfg, err := al.GetTypedConfig().UnmarshalNew()
	if err != nil {
		return nil, wrap("typed_config", err)
	}
	var w io.Writer
	switch c := cfg.(type) {
	case *filev3.FileAccessLog:
		if l.format, err = fileFormat(c); err != nil {
			return nil, wrap("typed_config", err)
		}
		switch c.GetPath() {
		case "/dev/stdout":
			w = os.Stdout
		case "/dev/stderr":
			w = os.Stderr
		case "":
			return nil, wrap("typed_config.path", errors.New("required"))
		default:
			f, err := os.OpenFile(c.GetPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return nil, wrap("typed_config.path", err)
			}
			w, l.closer = f, f
		}
	case *streamv3.StdoutAccessLog:
		if l.format, err = logFormat(c.GetLogFormat()); err != nil {
			return nil, wrap("typed_config.log_format", err)
		}
		w = os.Stdout
	case *streamv3.StderrAccessLog:
		if l.format, err = logFormat(c.GetLogFormat()); err != nil {
			return nil, wrap("typed_config.log_format", err)
		}
		w = os.Stderr
	default:
		return nil, wrap("typed_config", fmt.Errorf("unsupported access logger %s (want envoy.access_loggers.file, stdout or stderr)", proto.MessageName(cfg)))
	}
	l.out = &lineWriter{w: w}
	return l, nil
}

func fileFormat(c *filev3.FileAccessLog) (*Format, error) {
	switch f := c.GetAccessLogFormat().(type) {
	case *filev3.FileAccessLog_Format:
		return compileOrDefault(f.Format)
	case *filev3.FileAccessLog_JsonFormat:
		return CompileStruct(f.JsonFormat, false)
	case *filev3.FileAccessLog_TypedJsonFormat:
		return CompileStruct(f.TypedJsonFormat, true)
	case *filev3.FileAccessLog_LogFormat:
		return logFormat(f.LogFormat)
	}
	return Compile(DefaultFormat)
}

func compileOrDefault(s string) (*Format, error) {
	if s == "" {
		s = DefaultFormat
	}
	return Compile(s)
}

// FromSubstitutionFormat compiles a SubstitutionFormatString, the format
// of log_format and of local reply body_format; nil gives the default
// format.
func FromSubstitutionFormat(s *corev3.SubstitutionFormatString) (*Format, error) {
	return logFormat(s)
}

func logFormat(s *corev3.SubstitutionFormatString) (*Format, error) {
	if s == nil {
		return Compile(DefaultFormat)
	}
	if len(s.GetFormatters()) > 0 {
		return nil, fmt.Errorf("formatters: formatter extensions (%s) are not supported", s.GetFormatters()[0].GetName())
	}
	var f *Format
	var err error
	switch v := s.GetFormat().(type) {
	case *corev3.SubstitutionFormatString_TextFormat:
		f, err = compileOrDefault(v.TextFormat)
	case *corev3.SubstitutionFormatString_TextFormatSource:
		var text string
		switch src := v.TextFormatSource.GetSpecifier().(type) {
		case *corev3.DataSource_InlineString:
			text = src.InlineString
		case *corev3.DataSource_InlineBytes:
			text = string(src.InlineBytes)
		case *corev3.DataSource_Filename:
			b, rerr := os.ReadFile(src.Filename)
			if rerr != nil {
				return nil, fmt.Errorf("text_format_source.filename: %w", rerr)
			}
			text = string(b)
		default:
			return nil, errors.New("text_format_source: want inline_string, inline_bytes or filename")
		}
		f, err = compileOrDefault(text)
	case *corev3.SubstitutionFormatString_JsonFormat:
		f, err = CompileStruct(v.JsonFormat, true)
	default:
		f, err = Compile(DefaultFormat)
	}
	if err != nil {
		return nil, err
	}
	f.omitEmpty = s.GetOmitEmptyValues()
	return f, nil
}
