package fetch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// cache keeps fetched modules on disk, as istio-agent does: a module
// under <dir>/modules/<sha256 of its name>/<digest>.wasm, where the
// digest is the module's for a URL and the image manifest's for an
// image; and, for a URL or an image tag, the digest last fetched under
// <dir>/tags/<sha256 of the URI>, so a restart finds a tagged module
// without asking the registry.
type cache struct {
	dir string

	mu   sync.Mutex
	tags map[string]*tagEntry // by URI
}

// tagEntry is the digest a URL or tag resolved to when last fetched,
// and the version of each resource that asked for it since.
type tagEntry struct {
	sum      string
	versions map[string]string
}

func newCache(dir string) *cache {
	return &cache{dir: dir, tags: map[string]*tagEntry{}}
}

func hashName(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (c *cache) modulePath(name, sum string) string {
	return filepath.Join(c.dir, "modules", hashName(name), sum+".wasm")
}

func (c *cache) tagPath(uri string) string {
	return filepath.Join(c.dir, "tags", hashName(uri))
}

// module returns the cached module name at digest sum.
func (c *cache) module(name, sum string) ([]byte, bool) {
	b, err := os.ReadFile(c.modulePath(name, sum))
	if err != nil || !isWasm(b) {
		return nil, false
	}
	if !strings.HasPrefix(name, ociPrefix) && sha256Hex(b) != sum {
		// A URL's module is named by its own digest: a file that does
		// not match it was damaged, and is fetched again.
		return nil, false
	}
	c.touch(name, sum)
	return b, true
}

// put stores a module, atomically so a reader never sees part of it.
func (c *cache) put(name, sum string, b []byte) error {
	return writeFile(c.modulePath(name, sum), b)
}

// tagged returns the digest uri resolved to when last fetched, if it
// may be used: when ignoreVersion (the pull policy is IfNotPresent), or
// when resource asks again with the version it asked with before. A
// version is recorded once its module is at hand, so a failed fetch is
// tried again.
func (c *cache) tagged(uri, resource, version string, ignoreVersion bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.tags[uri]
	if e == nil {
		b, err := os.ReadFile(c.tagPath(uri))
		sum := string(bytes.TrimSpace(b))
		if err != nil || len(sum) != 64 {
			return ""
		}
		e = &tagEntry{sum: sum, versions: map[string]string{}}
		c.tags[uri] = e
	}
	known, seen := e.versions[resource]
	if ignoreVersion || (seen && known == version) || (!seen && version == "") {
		e.versions[resource] = version
		return e.sum
	}
	return ""
}

// tag records that src resolved to digest sum, for resource at
// version. A reference pinned by digest needs no record.
func (c *cache) tag(src Source, sum, resource, version string) {
	if src.digest() != "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.tags[src.URI]
	if e == nil {
		e = &tagEntry{versions: map[string]string{}}
		c.tags[src.URI] = e
	}
	e.versions[resource] = version
	if e.sum != sum {
		e.sum = sum
		_ = writeFile(c.tagPath(src.URI), []byte(sum+"\n"))
	}
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

var wasmMagic = []byte{0, 'a', 's', 'm'}

// isWasm reports whether b starts like a Wasm binary module.
func isWasm(b []byte) bool {
	return len(b) >= 8 && bytes.Equal(b[:4], wasmMagic)
}
