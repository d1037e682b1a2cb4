package compressor

import (
	"reflect"
	"testing"
)

func TestParseAcceptEncoding(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []coding
		bad    bool
	}{
		{"single", []string{"gzip"}, []coding{{"gzip", 1}}, false},
		{"list with weights", []string{"gzip;q=0.8, br;q=1.0, zstd;q=0"}, []coding{{"gzip", 0.8}, {"br", 1}, {"zstd", 0}}, false},
		{"case and spaces", []string{"  GZip ; Q=0.5 ,Identity"}, []coding{{"gzip", 0.5}, {"identity", 1}}, false},
		{"wildcard", []string{"*;q=0.1"}, []coding{{"*", 0.1}}, false},
		{"several field lines", []string{"gzip", "br;q=0.2"}, []coding{{"gzip", 1}, {"br", 0.2}}, false},
		{"empty elements ignored", []string{",gzip,, ,"}, []coding{{"gzip", 1}}, false},
		{"other parameters ignored", []string{"gzip;level=9;q=0.3"}, []coding{{"gzip", 0.3}}, false},
		{"three decimals", []string{"gzip;q=0.001"}, []coding{{"gzip", 0.001}}, false},
		{"q above one is malformed", []string{"gzip;q=1.5, br"}, []coding{{"br", 1}}, true},
		{"four decimals is malformed", []string{"gzip;q=0.0001"}, nil, true},
		{"non-numeric q is malformed", []string{"gzip;q=high"}, nil, true},
		{"negative q is malformed", []string{"gzip;q=-1"}, nil, true},
		{"empty q is malformed", []string{"gzip;q="}, nil, true},
		{"bad token is malformed", []string{"gz ip, br"}, []coding{{"br", 1}}, true},
		{"empty name is malformed", []string{";q=1"}, nil, true},
		{"empty header", []string{""}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad := parseAcceptEncoding(tt.values)
			if !reflect.DeepEqual(got, tt.want) || bad != tt.bad {
				t.Errorf("parseAcceptEncoding(%q) = %v, %v; want %v, %v", tt.values, got, bad, tt.want, tt.bad)
			}
		})
	}
}

func TestChooseEncoding(t *testing.T) {
	tests := []struct {
		name     string
		values   []string // nil: no header
		encoding string
		want     acceptResult
	}{
		{"no header", nil, "gzip", noAcceptHeader},
		{"named", []string{"gzip"}, "gzip", headerCompressorUsed},
		{"named among others", []string{"deflate, gzip;q=0.5"}, "gzip", headerCompressorUsed},
		{"brotli name", []string{"gzip, br"}, "br", headerCompressorUsed},
		{"wildcard", []string{"*"}, "zstd", headerWildcard},
		{"absent without wildcard", []string{"deflate"}, "gzip", headerNotValid},
		{"q=0 refuses", []string{"gzip;q=0"}, "gzip", headerNotValid},
		{"explicit q=0 beats wildcard", []string{"gzip;q=0,*;q=1"}, "gzip", headerNotValid},
		{"explicit beats wildcard q=0", []string{"*;q=0,gzip;q=1"}, "gzip", headerCompressorUsed},
		{"wildcard q=0 refuses", []string{"*;q=0"}, "gzip", headerNotValid},
		{"identity only", []string{"identity"}, "gzip", headerIdentity},
		{"identity preferred", []string{"gzip;q=0.5, identity"}, "gzip", headerIdentity},
		{"tie goes to the compressor", []string{"gzip, identity"}, "gzip", headerCompressorUsed},
		{"identity below wildcard", []string{"identity;q=0.5, *"}, "gzip", headerWildcard},
		{"malformed only", []string{"gzip;q=2"}, "gzip", headerNotValid},
		{"malformed entry skipped", []string{"gzip;q=x, *"}, "gzip", headerWildcard},
		{"empty value", []string{""}, "gzip", headerNotValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chooseEncoding(tt.values, tt.encoding)
			if got != tt.want {
				t.Errorf("chooseEncoding(%q, %s) = %v, want %v", tt.values, tt.encoding, got, tt.want)
			}
			if got.allowed() != (tt.want == headerCompressorUsed || tt.want == headerWildcard) {
				t.Errorf("allowed() = %v for %v", got.allowed(), got)
			}
		})
	}
}

func FuzzParseAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "gzip;q=0.5, br;q=1.0", "*;q=0", "identity, zstd;q=0.001", ";q=", "gz ip,,", "br;q=1.000;x=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		codings, _ := parseAcceptEncoding([]string{s})
		for _, c := range codings {
			if c.q < 0 || c.q > 1 {
				t.Fatalf("%q: weight %v outside 0-1", s, c.q)
			}
			if !isToken(c.name) {
				t.Fatalf("%q: name %q is not a token", s, c.name)
			}
		}
		for _, enc := range []string{"gzip", "br", "zstd"} {
			r := chooseEncoding([]string{s}, enc)
			if r == noAcceptHeader {
				t.Fatalf("%q: a present header reported as absent", s)
			}
		}
	})
}
