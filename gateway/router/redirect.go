package router

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
)

// Redirect is a compiled RedirectAction. Route.Location builds the
// Location header from it.
type Redirect struct {
	// Code is the response status: 301 (the default), 302, 303, 307 or 308.
	Code int

	scheme       string
	host         string
	port         string // ":8443", or "" to keep the request's
	path         string
	pathSet      bool
	pathHasQuery bool
	prefix       string
	hasPrefix    bool
	regex        *Rewrite
	stripQuery   bool
}

var redirectCodes = map[routev3.RedirectAction_RedirectResponseCode]int{
	routev3.RedirectAction_MOVED_PERMANENTLY:  301,
	routev3.RedirectAction_FOUND:              302,
	routev3.RedirectAction_SEE_OTHER:          303,
	routev3.RedirectAction_TEMPORARY_REDIRECT: 307,
	routev3.RedirectAction_PERMANENT_REDIRECT: 308,
}

func compileRedirect(a *routev3.RedirectAction) (*Redirect, error) {
	code, ok := redirectCodes[a.GetResponseCode()]
	if !ok {
		return nil, fmt.Errorf("redirect.response_code: unknown value %d", a.GetResponseCode())
	}
	rd := &Redirect{Code: code, host: a.GetHostRedirect(), stripQuery: a.GetStripQuery()}
	switch s := a.GetSchemeRewriteSpecifier().(type) {
	case *routev3.RedirectAction_HttpsRedirect:
		if s.HttpsRedirect {
			rd.scheme = "https"
		}
	case *routev3.RedirectAction_SchemeRedirect:
		rd.scheme = strings.ToLower(s.SchemeRedirect)
	}
	if p := a.GetPortRedirect(); p != 0 {
		if p > 65535 {
			return nil, fmt.Errorf("redirect.port_redirect: %d is not a port", p)
		}
		rd.port = ":" + strconv.Itoa(int(p))
	}
	switch p := a.GetPathRewriteSpecifier().(type) {
	case *routev3.RedirectAction_PathRedirect:
		rd.path, rd.pathSet = p.PathRedirect, p.PathRedirect != ""
		rd.pathHasQuery = strings.Contains(p.PathRedirect, "?")
	case *routev3.RedirectAction_PrefixRewrite:
		rd.prefix, rd.hasPrefix = p.PrefixRewrite, true
	case *routev3.RedirectAction_RegexRewrite:
		rw, err := compileRewrite(p.RegexRewrite)
		if err != nil {
			return nil, fmt.Errorf("redirect.regex_rewrite.%w", err)
		}
		rd.regex = rw
	case *routev3.RedirectAction_PathRewrite:
		return nil, errors.New("redirect.path_rewrite: substitution-format path rewrites are not supported; use path_redirect, prefix_rewrite or regex_rewrite")
	}
	return rd, nil
}

// Location returns the Location header for a redirect route, or for a
// direct-response route answering 201 or 3xx, built as Envoy's
// Http::Utility::newUri does: the scheme, host, port and path of the
// request, each replaced where the redirect says so. A redirect's
// prefix_rewrite or regex_rewrite is applied to the request path first, as
// Envoy's router does before it answers.
func (r *Route) Location(req *filters.Request) string {
	rd := r.Redirect
	if rd == nil {
		rd = &Redirect{}
	}
	path := req.Path
	if rd.hasPrefix || rd.regex != nil {
		path = r.m.rewritePath(path, rd.prefix, rd.hasPrefix, rd.regex)
	}
	return rd.location(req, path)
}

func (rd *Redirect) location(req *filters.Request, path string) string {
	scheme := rd.scheme
	if scheme == "" {
		scheme = req.Scheme
	}
	host := rd.host
	if host == "" {
		host = requestHost(req, scheme, rd.port)
	}
	if rd.pathSet {
		if rd.pathHasQuery {
			path = rd.path
		} else if i := strings.IndexByte(path, '?'); i >= 0 {
			path = rd.path + path[i:]
		} else {
			path = rd.path
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if !rd.pathHasQuery && rd.stripQuery {
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
	}
	return scheme + "://" + host + rd.port + path
}

// requestHost follows Envoy's processRequestHost: the request's port is
// dropped when the redirect sets a port, or when it is the default port of
// the original protocol and the scheme changes.
func requestHost(req *filters.Request, newScheme, newPort string) string {
	host := req.Authority
	if host == "" {
		return host
	}
	var end int
	if host[0] == '[' {
		end = strings.LastIndex(host, "]:")
		if end >= 0 {
			end++
		}
	} else {
		end = strings.LastIndexByte(host, ':')
	}
	if end < 0 {
		return host
	}
	port := host[end:]
	proto := req.Header.Get("X-Forwarded-Proto")
	if proto == "" {
		proto = req.Scheme
	}
	remove := newPort != ""
	if newScheme != proto {
		remove = remove || (strings.EqualFold(proto, "https") && port == ":443")
		remove = remove || (strings.EqualFold(proto, "http") && port == ":80")
	}
	if remove {
		return host[:end]
	}
	return host
}

// rewritePath applies a prefix or regex rewrite to a full request path
// (with query): the matched prefix of a prefix route, or the whole path
// of an exact or regex route, is replaced by prefix; a regex rewrite
// applies to the path without the query, which is kept.
func (m *routeMatch) rewritePath(full, prefix string, hasPrefix bool, re *Rewrite) string {
	path, _ := splitPath(full)
	rest := full[len(path):]
	if re != nil {
		return re.Replace(path) + rest
	}
	if !hasPrefix {
		return full
	}
	switch m.kind {
	case pathPrefix, pathSeparatedPrefix:
		if len(m.value) <= len(path) {
			return prefix + full[len(m.value):]
		}
	}
	return prefix + rest
}
