package fetch

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// WasmLayerMediaType is the layer holding the module in a Wasm OCI
// artifact image (https://github.com/solo-io/wasm/blob/master/spec/spec.md).
const WasmLayerMediaType types.MediaType = "application/vnd.module.wasm.content.layer.v1+wasm"

// compatFile is the module's name in the layer of a "compat" image
// (https://github.com/solo-io/wasm/blob/master/spec/spec-compat.md).
const compatFile = "plugin.wasm"

// resolveImage fetches the manifest of src's image. It returns the
// manifest's digest, which the request's sha256 is checked against, and
// pull, which fetches the module's layer: the caller may find the
// digest already cached and need no layer.
func (f *Fetcher) resolveImage(ctx context.Context, src Source, r Request, want string) (pull func() ([]byte, error), digest string, err error) {
	ref := src.Ref
	if f.insecureHost(src.Host) {
		// An insecure registry may be served over plain HTTP.
		if ref, err = name.ParseReference(ref.String(), name.Insecure); err != nil {
			return nil, "", err
		}
	}
	var keys authn.Keychain = authn.DefaultKeychain
	if r.PullSecret != nil {
		if keys, err = parseDockerConfig(r.PullSecret); err != nil {
			return nil, "", &PullSecretError{err}
		}
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(f.transport(src.Host)),
		remote.WithAuthFromKeychain(keys),
		remote.WithRetryBackoff(remote.Backoff{Duration: r.Backoff, Factor: 2, Jitter: 0.1, Steps: r.Attempts, Cap: r.MaxBackoff}),
	}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("fetching the manifest of %s: %w", src.URI, err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", src.URI, err)
	}
	digest = desc.Digest.Hex
	if want != "" && want != digest {
		// An index resolves to the image of the platform; its digest
		// is the image's own.
		if d, err := img.Digest(); err == nil && d.Hex == want {
			digest = d.Hex
		}
	}
	pull = func() ([]byte, error) { return f.extract(img) }
	return pull, digest, nil
}

// extract takes the module out of an image in either format Istio
// accepts: a Wasm OCI artifact (a layer of type WasmLayerMediaType
// holding the module as is), or a "compat" image whose last layer, a
// gzipped tar (Docker or OCI media type), holds plugin.wasm.
func (f *Fetcher) extract(img v1.Image) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) == 0 {
		return nil, errors.New("image has no layers")
	}
	var types []string
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		if mt == WasmLayerMediaType {
			return f.layerBytes(l)
		}
		types = append(types, string(mt))
	}
	last := layers[len(layers)-1]
	mt, _ := last.MediaType()
	if mt.IsLayer() {
		return f.compatModule(last)
	}
	return nil, fmt.Errorf("no layer of type %s, nor a tar.gz layer holding %s (layers: %v)", WasmLayerMediaType, compatFile, types)
}

// layerBytes reads a layer as stored: the artifact's module is not
// compressed, whatever its media type might suggest to a library.
func (f *Fetcher) layerBytes(l v1.Layer) ([]byte, error) {
	if n, err := l.Size(); err == nil && n > f.opts.MaxSize {
		return nil, fmt.Errorf("%w: layer of %d bytes, limit %d", errTooLarge, n, f.opts.MaxSize)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readLimited(rc, f.opts.MaxSize)
}

// compatModule finds plugin.wasm in a gzipped tar layer.
func (f *Fetcher) compatModule(l v1.Layer) ([]byte, error) {
	if n, err := l.Size(); err == nil && n > f.opts.MaxSize {
		return nil, fmt.Errorf("%w: layer of %d bytes, limit %d", errTooLarge, n, f.opts.MaxSize)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("layer is not gzipped: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("layer holds no %s", compatFile)
		}
		if err != nil {
			return nil, fmt.Errorf("layer is not a tar archive: %w", err)
		}
		if h.Typeflag == tar.TypeReg && path.Base(h.Name) == compatFile {
			return readLimited(tr, f.opts.MaxSize)
		}
	}
}
