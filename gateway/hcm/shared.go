package hcm

import (
	"github.com/waygate/waygate/filters"
	"google.golang.org/protobuf/proto"
)

// SharedFactory returns the factory the compiler's cache holds for key
// and msg, building it with build when there is none. Listeners build
// their network filters through it, so those live by the same compile
// generations as HTTP filters: kept while a push leaves their config
// unchanged, closed by Sweep once no listener uses them.
func (c *Compiler) SharedFactory(key string, msg proto.Message, build func() (filters.Factory, error)) (filters.Factory, error) {
	if c.factories == nil {
		c.factories = newFactoryCache()
	}
	return c.factories.get(key, msg, build)
}
