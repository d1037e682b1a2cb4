package jwt

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

// jwksServer is a real JWKS endpoint on loopback whose key set a test
// rotates, and which can be told to fail or hang.
type jwksServer struct {
	addr     string
	set      atomic.Value // string
	hits     atomic.Int64
	failNext atomic.Int64 // answer 500 to this many requests
	hold     chan struct{}
}

func startJWKS(t *testing.T, set string) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set.Store(set)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h := s.hold; h != nil {
			<-h
		}
		if s.failNext.Load() > 0 {
			s.failNext.Add(-1)
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, s.set.Load().(string))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// clusterUpstream reaches "jwks-cluster" at the server's address over a
// real connection, as the gateway's cluster caller does for a cluster
// with one endpoint.
type clusterUpstream struct{ addr string }

func (u clusterUpstream) RoundTrip(ctx context.Context, cluster string, req *http.Request) (*http.Response, error) {
	if cluster != "jwks-cluster" {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	r := req.Clone(ctx)
	r.URL.Host = u.addr
	r.URL.Scheme = "http"
	return http.DefaultTransport.RoundTrip(r)
}

func remoteProvider(mod ...func(*jwtauthnv3.RemoteJwks)) *jwtauthnv3.JwtProvider {
	r := &jwtauthnv3.RemoteJwks{
		HttpUri: &corev3.HttpUri{
			Uri:              "http://keys.example.com/jwks.json",
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "jwks-cluster"},
			Timeout:          durationpb.New(2 * time.Second),
		},
	}
	for _, m := range mod {
		m(r)
	}
	return &jwtauthnv3.JwtProvider{Issuer: testIssuer, JwksSourceSpecifier: &jwtauthnv3.JwtProvider_RemoteJwks{RemoteJwks: r}}
}

// syncBuffer is a log sink tests read while the filter writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func remoteEnv(srv *jwksServer) (filters.Env, *stats.Store, *syncBuffer) {
	store := stats.NewStore()
	logs := &syncBuffer{}
	return filters.Env{
		Upstream: clusterUpstream{srv.addr},
		Stats:    store.Scope("http.ingress.").Filters(),
		Log:      slog.New(slog.NewTextHandler(logs, nil)),
	}, store, logs
}

func TestRemoteJWKSFetchedOnceAndCached(t *testing.T) {
	s := newSigner(t, "RS256", "k1")
	srv := startJWKS(t, jwks(s))
	env, store, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider()), env)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); code != 0 {
				t.Errorf("rejected: %d %q", code, body)
			}
		}()
	}
	wg.Wait()
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want once for concurrent first requests", n)
	}
	if n := store.Counter("http.ingress.jwt_authn.jwks_fetch_success").Value(); n != 1 {
		t.Errorf("jwks_fetch_success = %d", n)
	}
}

// TestRemoteJWKSRotation rotates the issuer's key on a real JWKS server:
// a token with the new kid triggers a refetch and passes, a token of the
// retired key then fails; no restart, no new factory.
func TestRemoteJWKSRotation(t *testing.T) {
	old := newSignerN(t, "RS256", "old", 0)
	next := newSignerN(t, "RS256", "new", 1)
	srv := startJWKS(t, jwks(old))
	env, _, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider()), env, options{refetch: time.Millisecond})

	if code, body := outcome(t, f, newExchange("/", bearer(old.sign(t, claims()))...)); code != 0 {
		t.Fatalf("old key before rotation: %d %q", code, body)
	}
	srv.set.Store(jwks(next))
	time.Sleep(5 * time.Millisecond) // past the refetch interval
	if code, body := outcome(t, f, newExchange("/", bearer(next.sign(t, claims()))...)); code != 0 {
		t.Fatalf("new key after rotation: %d %q", code, body)
	}
	if code, body := outcome(t, f, newExchange("/", bearer(old.sign(t, claims()))...)); code != 401 || body != "Jwks doesn't have key to match kid or alg from Jwt" {
		t.Fatalf("retired key: %d %q", code, body)
	}
}

// TestRemoteJWKSCacheDuration picks up a rotation without kids once the
// cache expires.
func TestRemoteJWKSCacheDuration(t *testing.T) {
	old := newSignerN(t, "ES256", "", 0)
	next := newSignerN(t, "ES256", "", 0)
	srv := startJWKS(t, jwks(old))
	env, _, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider(func(r *jwtauthnv3.RemoteJwks) {
		r.CacheDuration = durationpb.New(20 * time.Millisecond)
	})), env)
	if code, _ := outcome(t, f, newExchange("/", bearer(old.sign(t, claims()))...)); code != 0 {
		t.Fatal("old key rejected")
	}
	srv.set.Store(jwks(next))
	time.Sleep(30 * time.Millisecond)
	if code, body := outcome(t, f, newExchange("/", bearer(next.sign(t, claims()))...)); code != 0 {
		t.Fatalf("new key after cache expiry: %d %q", code, body)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("hits = %d, want 2", n)
	}
}

// TestUnknownKidRefetchIsBounded sends many tokens with kids the issuer
// never published: the key server sees one refetch per interval, not
// one per request.
func TestUnknownKidRefetchIsBounded(t *testing.T) {
	s := newSigner(t, "RS256", "k1")
	srv := startJWKS(t, jwks(s))
	env, _, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider()), env, options{refetch: time.Hour})
	if code, _ := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); code != 0 {
		t.Fatal("valid token rejected")
	}
	for i := range 20 {
		forged := &signer{alg: "RS256", kid: fmt.Sprintf("random-%d", i), priv: s.priv}
		if code, _ := outcome(t, f, newExchange("/", bearer(forged.sign(t, claims()))...)); code != 401 {
			t.Fatalf("unknown kid accepted")
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

// TestRemoteJWKSFailure answers 401 while the key server fails, logs why
// and counts it; a server that recovers is used at the next interval.
func TestRemoteJWKSFailure(t *testing.T) {
	s := newSigner(t, "RS256", "")
	srv := startJWKS(t, jwks(s))
	srv.failNext.Store(1)
	env, store, logs := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider()), env, options{refetch: 10 * time.Millisecond})
	tok := s.sign(t, claims())
	x := newExchange("/", bearer(tok)...)
	if code, body := outcome(t, f, x); code != 401 || body != "Jwks remote fetch is failed" {
		t.Fatalf("got %d %q", code, body)
	}
	if n := store.Counter("http.ingress.jwt_authn.jwks_fetch_failed").Value(); n != 1 {
		t.Errorf("jwks_fetch_failed = %d", n)
	}
	if l := logs.String(); !strings.Contains(l, "jwks fetch failed") || !strings.Contains(l, "jwks-cluster") || !strings.Contains(l, "status 503") {
		t.Errorf("log = %q", l)
	}
	time.Sleep(15 * time.Millisecond)
	if code, body := outcome(t, f, newExchange("/", bearer(tok)...)); code != 0 {
		t.Fatalf("after recovery: %d %q", code, body)
	}
}

// TestRemoteJWKSUnknownCluster fails requests, not the config: the
// cluster may arrive in a later push.
func TestRemoteJWKSUnknownCluster(t *testing.T) {
	s := newSigner(t, "RS256", "")
	srv := startJWKS(t, jwks(s))
	env, _, _ := remoteEnv(srv)
	p := remoteProvider(func(r *jwtauthnv3.RemoteJwks) {
		r.HttpUri.HttpUpstreamType = &corev3.HttpUri_Cluster{Cluster: "elsewhere"}
	})
	f := mustFactory(t, singleProvider(p), env)
	if _, body := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); body != "Jwks remote fetch is failed" {
		t.Fatalf("body = %q", body)
	}
}

func TestRemoteJWKSRetryPolicy(t *testing.T) {
	s := newSigner(t, "ES256", "")
	srv := startJWKS(t, jwks(s))
	srv.failNext.Store(2)
	env, store, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider(func(r *jwtauthnv3.RemoteJwks) {
		r.RetryPolicy = &corev3.RetryPolicy{
			NumRetries:   wrapperspb.UInt32(2),
			RetryBackOff: &corev3.BackoffStrategy{BaseInterval: durationpb.New(time.Millisecond), MaxInterval: durationpb.New(5 * time.Millisecond)},
		}
	})), env)
	if code, body := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); code != 0 {
		t.Fatalf("got %d %q", code, body)
	}
	if n := srv.hits.Load(); n != 3 {
		t.Errorf("hits = %d, want 3 (two failures, then success)", n)
	}
	if n := store.Counter("http.ingress.jwt_authn.jwks_fetch_failed").Value(); n != 0 {
		t.Errorf("jwks_fetch_failed = %d, want 0: retries are one fetch", n)
	}
}

// TestAsyncFetchNeverBlocksStartup builds the filter while the key
// server hangs: New returns, the background fetch completes later and
// requests then verify without a fetch of their own.
func TestAsyncFetchNeverBlocksStartup(t *testing.T) {
	s := newSigner(t, "EdDSA", "")
	srv := startJWKS(t, jwks(s))
	release := make(chan struct{})
	srv.hold = release
	env, _, _ := remoteEnv(srv)
	p := remoteProvider(func(r *jwtauthnv3.RemoteJwks) {
		r.AsyncFetch = &jwtauthnv3.JwksAsyncFetch{FastListener: true}
	})
	f := mustFactory(t, singleProvider(p), env) // returns although the server holds the fetch
	eventually(t, func() bool { return srv.hits.Load() > 0 })
	close(release)
	eventually(t, func() bool { return f.ordered[0].remote.cur.Load() != nil })
	if code, body := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); code != 0 {
		t.Fatalf("got %d %q", code, body)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("hits = %d, want 1", n)
	}
}

// TestRemoteSymmetricKeysIgnored refuses HMAC secrets served by a key
// server: an HS token cannot be verified with a remote set.
func TestRemoteSymmetricKeysIgnored(t *testing.T) {
	hs := newSigner(t, "HS256", "")
	rs := newSigner(t, "RS256", "")
	srv := startJWKS(t, jwks(hs, rs))
	env, _, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider()), env)
	if code, body := outcome(t, f, newExchange("/", bearer(hs.sign(t, claims()))...)); code != 401 || body != "Jwks doesn't have key to match kid or alg from Jwt" {
		t.Fatalf("HS token with a remote oct key: %d %q", code, body)
	}
	if code, _ := outcome(t, f, newExchange("/", bearer(rs.sign(t, claims()))...)); code != 0 {
		t.Fatal("RS token rejected")
	}
}

// TestRequestCancelledWhileFetching stops waiting when the client goes
// away; the fetch goes on for the next request.
func TestRequestCancelledWhileFetching(t *testing.T) {
	s := newSigner(t, "RS256", "")
	srv := startJWKS(t, jwks(s))
	release := make(chan struct{})
	srv.hold = release
	env, _, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider()), env)
	ctx, cancel := context.WithCancel(context.Background())
	x := newExchange("/", bearer(s.sign(t, claims()))...)
	x.Context = ctx
	done := make(chan int)
	go func() { c, _ := outcome(t, f, x); done <- c }()
	eventually(t, func() bool { return srv.hits.Load() > 0 })
	cancel()
	if code := <-done; code != 401 {
		t.Errorf("cancelled request: %d", code)
	}
	close(release)
	if code, body := outcome(t, f, newExchange("/", bearer(s.sign(t, claims()))...)); code != 0 {
		t.Fatalf("next request: %d %q", code, body)
	}
}

// TestAsyncFetchRefreshesInBackground rotates a key set without kids
// under async_fetch: the background refresh at cache_duration picks the
// new key up, and no request waits for a fetch.
func TestAsyncFetchRefreshesInBackground(t *testing.T) {
	old := newSigner(t, "ES256", "")
	next := newSigner(t, "ES256", "")
	srv := startJWKS(t, jwks(old))
	env, _, _ := remoteEnv(srv)
	f := mustFactory(t, singleProvider(remoteProvider(func(r *jwtauthnv3.RemoteJwks) {
		r.AsyncFetch = &jwtauthnv3.JwksAsyncFetch{}
		r.CacheDuration = durationpb.New(20 * time.Millisecond)
	})), env)
	eventually(t, func() bool { return f.ordered[0].remote.cur.Load() != nil })
	srv.set.Store(jwks(next))
	before := srv.hits.Load()
	eventually(t, func() bool { return srv.hits.Load() >= before+2 })
	if code, body := outcome(t, f, newExchange("/", bearer(next.sign(t, claims()))...)); code != 0 {
		t.Fatalf("new key after a background refresh: %d %q", code, body)
	}
}

// eventually waits up to 10s for cond, failing the test otherwise.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
