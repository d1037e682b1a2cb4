// Package hcm is the HTTP connection manager: it turns an Envoy
// HttpConnectionManager config into an http.Handler that normalizes each
// request, matches its route, runs the HTTP filter chain and lets the
// terminal router filter answer.
//
// See https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/http_conn_man
package hcm

import (
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	"github.com/waygate/waygate/gateway/stats"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// View is the part of a snapshot a request needs: route tables by RDS
// name and clusters. A request loads one View when it starts.
type View interface {
	upstream.Set
	RouteTable(name string) *router.Table
}

// Config is a compiled HttpConnectionManager. It is immutable and shared
// by every connection accepted on the filter chain that holds it.
type Config struct {
	StatPrefix string
	// RDSName is the route configuration to look up in the View; ""
	// when the routes are inline.
	RDSName string
	// Inline is the inline route table, if any.
	Inline *router.Table

	chain []chainEntry

	serverName        string
	serverTransform   hcmv3.HttpConnectionManager_ServerHeaderTransformation
	useRemoteAddress  bool
	xffTrustedHops    uint32
	skipXFFAppend     bool
	via               string
	generateRequestID bool
	preserveExtReqID  bool
	alwaysSetReqID    bool
	normalizePath     bool
	mergeSlashes      bool
	escapedSlashes    hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction
	stripAnyHostPort  bool
	stripMatchingPort bool
	upgrades          map[string]bool
	streamIdleTimeout time.Duration
	requestTimeout    time.Duration
	maxRequestHeaders int
	limitHeaders      bool // max_request_headers_kb is set
	bufferLimit       int

	accessLogs []AccessLogger
	log        *slog.Logger
	stats      *httpStats
	draining   atomic.Bool
	matcher    atomic.Pointer[tableMatcher]
	// xfcc is forward_client_cert_details with
	// set_current_client_cert_details (xfcc.go).
	xfcc xfcc
}

// Drain marks the config as replaced by a newer one: connections
// accepted with it close after their current request (HTTP/2 ones with a
// GOAWAY), so clients reconnect onto the new config (Envoy drains them
// likewise).
func (c *Config) Drain() { c.draining.Store(true) }

// AccessLogger writes one access log entry per finished exchange.
type AccessLogger interface {
	Log(x *filters.Exchange, end time.Time)
}

// chainEntry is one HTTP filter of the chain.
type chainEntry struct {
	name    string
	factory filters.Factory
	// disabled filters run only on routes whose per-filter config
	// enables them (HttpFilter.disabled).
	disabled bool
}

// Compiler builds Configs. It keeps the factories of earlier compiles so
// a filter whose config did not change keeps its state (JWKS caches, Wasm
// VMs) across pushes.
type Compiler struct {
	Env filters.Env
	// AccessLog compiles an access_log entry; nil means access logs in
	// the config are rejected.
	AccessLog func(cfg *accesslogv3.AccessLog) (AccessLogger, error)
	// Stats is where the HCM's and its filters' stats live, under
	// http.<stat_prefix>. as Envoy names them; nil keeps none.
	Stats *stats.Store
	// BufferLimit is the most a filter may buffer of a body (Envoy's
	// per_connection_buffer_limit_bytes, 1 MiB by default).
	BufferLimit int

	factories *factoryCache
}

// Compile turns an HttpConnectionManager into a Config. Errors name the
// field path below the HCM.
func (c *Compiler) Compile(m *hcmv3.HttpConnectionManager) (*Config, error) {
	if c.factories == nil {
		c.factories = newFactoryCache()
	}
	cfg := &Config{
		StatPrefix:        m.GetStatPrefix(),
		serverName:        "envoy",
		serverTransform:   m.GetServerHeaderTransformation(),
		useRemoteAddress:  m.GetUseRemoteAddress().GetValue(),
		xffTrustedHops:    m.GetXffNumTrustedHops(),
		skipXFFAppend:     m.GetSkipXffAppend(),
		via:               m.GetVia(),
		generateRequestID: m.GetGenerateRequestId() == nil || m.GetGenerateRequestId().GetValue(),
		preserveExtReqID:  m.GetPreserveExternalRequestId(),
		alwaysSetReqID:    m.GetAlwaysSetRequestIdInResponse(),
		normalizePath:     m.GetNormalizePath().GetValue(),
		mergeSlashes:      m.GetMergeSlashes(),
		escapedSlashes:    m.GetPathWithEscapedSlashesAction(),
		stripAnyHostPort:  m.GetStripAnyHostPort(),
		stripMatchingPort: m.GetStripMatchingHostPort(),
		upgrades:          map[string]bool{},
		streamIdleTimeout: 5 * time.Minute,
		maxRequestHeaders: 60 << 10,
		bufferLimit:       c.BufferLimit,
		log:               c.Env.Log,
		xfcc:              compileXFCC(m),
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.stats = newHTTPStats(c.Stats, cfg.StatPrefix)
	if cfg.bufferLimit <= 0 {
		cfg.bufferLimit = 1 << 20
	}
	if m.GetServerName() != "" {
		cfg.serverName = m.GetServerName()
	}
	if d := m.GetStreamIdleTimeout(); d != nil {
		cfg.streamIdleTimeout = d.AsDuration()
	}
	if d := m.GetRequestTimeout(); d != nil {
		cfg.requestTimeout = d.AsDuration()
	}
	if kb := m.GetMaxRequestHeadersKb(); kb != nil {
		cfg.maxRequestHeaders = int(kb.GetValue()) << 10
		cfg.limitHeaders = true
	}
	for i, u := range m.GetUpgradeConfigs() {
		if u.GetEnabled() != nil && !u.GetEnabled().GetValue() {
			continue
		}
		if len(u.GetFilters()) > 0 {
			return nil, fmt.Errorf("upgrade_configs[%d].filters: per-upgrade filter chains are not supported", i)
		}
		cfg.upgrades[lower(u.GetUpgradeType())] = true
	}

	switch rs := m.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_Rds:
		cfg.RDSName = rs.Rds.GetRouteConfigName()
		if cfg.RDSName == "" {
			return nil, fmt.Errorf("rds.route_config_name: must not be empty")
		}
	case *hcmv3.HttpConnectionManager_RouteConfig:
		t, err := router.Compile(rs.RouteConfig)
		if err != nil {
			return nil, fmt.Errorf("route_config: %w", err)
		}
		cfg.Inline = t
	case *hcmv3.HttpConnectionManager_ScopedRoutes:
		return nil, fmt.Errorf("scoped_routes: scoped route configurations are not supported")
	default:
		return nil, fmt.Errorf("route_specifier: one of rds or route_config is required")
	}

	env := c.Env
	if c.Stats != nil {
		env.Stats = cfg.stats.scope.Filters()
	}
	if err := c.compileFilters(cfg, m, env); err != nil {
		return nil, err
	}
	if c.AccessLog != nil {
		for i, al := range m.GetAccessLog() {
			l, err := c.AccessLog(al)
			if err != nil {
				return nil, fmt.Errorf("access_log[%d]: %w", i, err)
			}
			cfg.accessLogs = append(cfg.accessLogs, l)
		}
	}
	return cfg, nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
