package compressor

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	brotliv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/brotli/compressor/v3"
	gzipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	zstdv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/zstd/compressor/v3"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"
)

// Type URLs of the compressor libraries (compressor_library.typed_config).
const (
	GzipTypeURL   = "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"
	ZstdTypeURL   = "type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd"
	BrotliTypeURL = "type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli"
)

// encoder is a streaming compressor: Flush emits everything written so
// far as a complete block the client can decode, Close ends the stream,
// and Reset makes a used encoder ready for another stream.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(w io.Writer)
}

// library is a compiled compressor_library: the content coding it
// produces and a pool of encoders configured once.
type library struct {
	// name is compressor_library.name, part of the stats prefix.
	name string
	// encoding is the content coding, as in accept-encoding and
	// content-encoding ("gzip", "zstd", "br").
	encoding string
	// statPrefix is the library's own stats segment, as Envoy's
	// compressor factories name it ("gzip", "zstd", "brotli").
	statPrefix string
	pool       sync.Pool
}

func (l *library) get(w io.Writer) encoder {
	e := l.pool.Get().(encoder)
	e.Reset(w)
	return e
}

func (l *library) put(e encoder) {
	e.Reset(io.Discard)
	l.pool.Put(e)
}

// compileLibrary compiles compressor_library. Errors name the field below
// field (the path of the TypedExtensionConfig).
func compileLibrary(tc *corev3.TypedExtensionConfig, field string) (*library, error) {
	if tc == nil || tc.GetTypedConfig() == nil {
		return nil, fmt.Errorf("%s.typed_config: required; want a Gzip, Zstd or Brotli compressor library", field)
	}
	msg, err := tc.GetTypedConfig().UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("%s.typed_config: unsupported type %q: want %s, %s or %s", field, tc.GetTypedConfig().GetTypeUrl(), GzipTypeURL, ZstdTypeURL, BrotliTypeURL)
	}
	var l *library
	switch m := msg.(type) {
	case *gzipv3.Gzip:
		l, err = gzipLibrary(m)
	case *zstdv3.Zstd:
		l, err = zstdLibrary(m)
	case *brotliv3.Brotli:
		l, err = brotliLibrary(m)
	default:
		return nil, fmt.Errorf("%s.typed_config: unsupported type %q: want %s, %s or %s", field, tc.GetTypedConfig().GetTypeUrl(), GzipTypeURL, ZstdTypeURL, BrotliTypeURL)
	}
	if err != nil {
		return nil, fmt.Errorf("%s.typed_config (%s): %w", field, proto.MessageName(msg).Name(), err)
	}
	l.name = tc.GetName()
	return l, nil
}

// checkRange reports an error when the wrapped value v is set outside
// [lo, hi], the ranges compressor protos validate.
func checkRange(field string, set bool, v, lo, hi uint32) error {
	if set && (v < lo || v > hi) {
		return fmt.Errorf("%s: %d is outside %d-%d", field, v, lo, hi)
	}
	return nil
}

// gzipLibrary compiles the gzip library. Go's compress/gzip has no knobs
// for zlib's memory level, window size, strategy or output chunk size;
// they are checked against the proto's ranges and otherwise ignored.
func gzipLibrary(m *gzipv3.Gzip) (*library, error) {
	if err := errors.Join(
		checkRange("memory_level", m.MemoryLevel != nil, m.GetMemoryLevel().GetValue(), 1, 9),
		checkRange("window_bits", m.WindowBits != nil, m.GetWindowBits().GetValue(), 9, 15),
		checkRange("chunk_size", m.ChunkSize != nil, m.GetChunkSize().GetValue(), 4096, 65536),
	); err != nil {
		return nil, err
	}
	if _, ok := gzipv3.Gzip_CompressionStrategy_name[int32(m.GetCompressionStrategy())]; !ok {
		return nil, fmt.Errorf("compression_strategy: %d is not a known strategy", m.GetCompressionStrategy())
	}
	// DEFAULT_COMPRESSION is zlib's level 6, which Go's default level
	// also is; the numbered levels and BEST_SPEED (1) and
	// BEST_COMPRESSION (9) are zlib's levels, the same in Go.
	level := int(m.GetCompressionLevel())
	switch {
	case level == 0:
		level = gzip.DefaultCompression
	case level < 1 || level > 9:
		return nil, fmt.Errorf("compression_level: %d is not a known level (DEFAULT_COMPRESSION, BEST_SPEED, BEST_COMPRESSION or COMPRESSION_LEVEL_1..9)", m.GetCompressionLevel())
	}
	l := &library{encoding: "gzip", statPrefix: "gzip"}
	l.pool.New = func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, level) // level checked above
		return w
	}
	return l, nil
}

// zstdLibrary compiles the zstd library. klauspost/compress maps zstd
// levels onto four encoder speeds; strategy and chunk_size are checked
// and otherwise ignored, and a dictionary is refused.
func zstdLibrary(m *zstdv3.Zstd) (*library, error) {
	if err := errors.Join(
		checkRange("compression_level", m.CompressionLevel != nil, m.GetCompressionLevel().GetValue(), 0, 22),
		checkRange("chunk_size", m.ChunkSize != nil, m.GetChunkSize().GetValue(), 4096, 65536),
	); err != nil {
		return nil, err
	}
	if _, ok := zstdv3.Zstd_Strategy_name[int32(m.GetStrategy())]; !ok {
		return nil, fmt.Errorf("strategy: %d is not a known strategy", m.GetStrategy())
	}
	if m.GetDictionary() != nil {
		return nil, errors.New("dictionary: dictionary compression is not supported; remove the field")
	}
	level := int(m.GetCompressionLevel().GetValue())
	if level == 0 {
		level = 3 // zstd's default level
	}
	opts := []zstd.EOption{
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderCRC(m.GetEnableChecksum()),
		zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true),
	}
	if _, err := zstd.NewWriter(nil, opts...); err != nil {
		return nil, err
	}
	l := &library{encoding: "zstd", statPrefix: "zstd"}
	l.pool.New = func() any {
		w, _ := zstd.NewWriter(io.Discard, opts...) // options checked above
		return w
	}
	return l, nil
}

// brotliLibrary compiles the brotli library: quality and window_bits
// reach the encoder; input_block_bits, chunk_size, encoder_mode and
// disable_literal_context_modeling are checked and otherwise ignored.
func brotliLibrary(m *brotliv3.Brotli) (*library, error) {
	if err := errors.Join(
		checkRange("quality", m.Quality != nil, m.GetQuality().GetValue(), 0, 11),
		checkRange("window_bits", m.WindowBits != nil, m.GetWindowBits().GetValue(), 10, 24),
		checkRange("input_block_bits", m.InputBlockBits != nil, m.GetInputBlockBits().GetValue(), 16, 24),
		checkRange("chunk_size", m.ChunkSize != nil, m.GetChunkSize().GetValue(), 4096, 65536),
	); err != nil {
		return nil, err
	}
	if _, ok := brotliv3.Brotli_EncoderMode_name[int32(m.GetEncoderMode())]; !ok {
		return nil, fmt.Errorf("encoder_mode: %d is not a known mode", m.GetEncoderMode())
	}
	opts := brotli.WriterOptions{Quality: 3, LGWin: 18}
	if m.Quality != nil {
		opts.Quality = int(m.GetQuality().GetValue())
	}
	if m.WindowBits != nil {
		opts.LGWin = int(m.GetWindowBits().GetValue())
	}
	l := &library{encoding: "br", statPrefix: "brotli"}
	l.pool.New = func() any { return brotli.NewWriterOptions(io.Discard, opts) }
	return l, nil
}
