package rls

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/waygate/waygate/gateway/rls/rlstest"
)

// BenchmarkShouldRateLimit is one decision against a real Redis on
// loopback: the pipeline round trip dominates.
func BenchmarkShouldRateLimit(b *testing.B) {
	addr := rlstest.StartRedis(b)
	cfg, err := Parse("bench.yaml", []byte(perClient))
	if err != nil {
		b.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	s := New(cfg, Options{Redis: client})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.ShouldRateLimit(ctx, request("edge", "remote_address", "10.0.0."+strconv.Itoa(i%256))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkFind(b *testing.B) {
	cfg, err := Parse("bench.yaml", []byte(sample))
	if err != nil {
		b.Fatal(err)
	}
	entries := []entry{{"generic_key", "api"}, {"user", "bob"}}
	b.ReportAllocs()
	for b.Loop() {
		if l, _ := cfg.find("edge", entries); l == nil {
			b.Fatal("no limit")
		}
	}
}
