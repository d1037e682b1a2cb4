package fetch

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Kind is how a module is fetched.
type Kind int

// The kinds of source.
const (
	KindHTTP Kind = iota + 1 // an http:// or https:// URL
	KindOCI                  // an image in an OCI registry
)

// Source is a parsed module URI.
type Source struct {
	// URI is the normalized URI: as given for a URL, oci:// and the
	// reference as given for an image.
	URI  string
	Kind Kind
	// Name identifies the module apart from its version: the URL, or
	// oci:// and the repository of an image (no tag, no digest). With a
	// digest, it keys the cache, as istio-agent keys it.
	Name string
	// Host is the host (and port) reached.
	Host string
	// Ref is the image reference, for KindOCI.
	Ref name.Reference
}

const ociPrefix = "oci://"

// ParseSource parses a module URI as istiod sends it: an http:// or
// https:// URL, an oci:// image reference, or a reference without a
// scheme (which istiod turns into oci://, but a config written by hand
// may hold, with a registry port that URL parsing would take for a
// scheme).
func ParseSource(uri string) (Source, error) {
	s := strings.TrimSpace(uri)
	if s == "" {
		return Source{}, fmt.Errorf("uri is empty")
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "oci", s
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		u, err := url.Parse(s)
		if err != nil {
			return Source{}, fmt.Errorf("uri %q: %w", uri, err)
		}
		if u.Host == "" {
			return Source{}, fmt.Errorf("uri %q: no host", uri)
		}
		return Source{URI: s, Kind: KindHTTP, Name: s, Host: u.Host}, nil
	case "oci":
		ref, err := name.ParseReference(rest)
		if err != nil {
			return Source{}, fmt.Errorf("uri %q: not an image reference: %w", uri, err)
		}
		return Source{
			URI:  ociPrefix + rest,
			Kind: KindOCI,
			Name: ociPrefix + ref.Context().Name(),
			Host: ref.Context().RegistryStr(),
			Ref:  ref,
		}, nil
	}
	return Source{}, fmt.Errorf("uri %q: scheme %q is not one of https, http or oci", uri, scheme)
}

// digest is the sha256 hex digest the reference pins, if any.
func (s Source) digest() string {
	if d, ok := s.Ref.(name.Digest); ok {
		if h, ok := strings.CutPrefix(d.DigestStr(), "sha256:"); ok {
			return h
		}
	}
	return ""
}

// alwaysPull reports whether p asks to fetch a cached module again
// when its config changes: PullAlways, and by default an image whose
// tag is latest, as istio-agent does (an image without a tag is
// latest too).
func (s Source) alwaysPull(p PullPolicy) bool {
	switch p {
	case PullAlways:
		return true
	case PullIfNotPresent:
		return false
	}
	t, ok := s.Ref.(name.Tag)
	return s.Kind == KindOCI && ok && t.TagStr() == "latest"
}

// ParsePullPolicy reads a WasmPlugin imagePullPolicy as istiod writes
// it; an unknown value is the default policy.
func ParsePullPolicy(s string) PullPolicy {
	switch s {
	case string(PullIfNotPresent):
		return PullIfNotPresent
	case string(PullAlways):
		return PullAlways
	}
	return PullDefault
}

// expectedDigest is the digest a fetch must match: sha (istiod sends
// "nil" for none), or the digest the image reference pins; both must
// agree when both are given.
func expectedDigest(src Source, sha string) (string, error) {
	sha = strings.ToLower(strings.TrimSpace(sha))
	sha = strings.TrimPrefix(sha, "sha256:")
	if sha == "nil" {
		sha = ""
	}
	if sha != "" {
		if b, err := hex.DecodeString(sha); err != nil || len(b) != 32 {
			return "", &ChecksumError{URI: src.URI, Want: sha}
		}
	}
	pinned := src.digest()
	switch {
	case pinned == "":
		return sha, nil
	case sha == "" || sha == pinned:
		return pinned, nil
	}
	return "", &ChecksumError{URI: src.URI, Got: pinned + " (pinned by the reference)", Want: sha}
}
