package listener

import (
	"fmt"
	"io"

	"github.com/waygate/waygate/filters"
	"google.golang.org/protobuf/proto"
)

// compileNetworkFilter builds a network filter registered for typeURL
// (filters.RegisterNetwork). The factory comes from the HTTP compiler's
// cache, so an unchanged config keeps its factory, and whatever it
// holds (Wasm instances), across pushes, and a removed one is closed.
func compileNetworkFilter(name, typeURL string, msg proto.Message, d Deps) (filters.NetworkFactory, error) {
	build, ok := filters.LookupNetwork(typeURL)
	if !ok || msg == nil {
		return nil, fmt.Errorf("network filter %s is not supported", typeURL)
	}
	env := d.HCM.Env
	if d.HCM.Stats != nil {
		env.Stats = d.HCM.Stats.Filters()
	}
	if env.Log == nil {
		env.Log = d.Log
	}
	if env.Log != nil {
		env.Log = env.Log.With("filter", name)
	}
	f, err := d.HCM.SharedFactory("network\x00"+typeURL, msg, func() (filters.Factory, error) {
		nf, err := build(msg, env)
		if err != nil {
			return nil, err
		}
		return cachedNetwork{nf}, nil
	})
	if err != nil {
		return nil, err
	}
	return f.(cachedNetwork).NetworkFactory, nil
}

// cachedNetwork lets a network factory sit in the HTTP compiler's
// factory cache, which holds filters.Factory values: it takes part in
// no HTTP stream, and closing it closes the network factory.
type cachedNetwork struct{ filters.NetworkFactory }

func (cachedNetwork) NewFilter(*filters.Exchange) any { return nil }

func (c cachedNetwork) Close() error {
	if cl, ok := c.NetworkFactory.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
