package istio

import (
	"fmt"
	"strings"

	"istio.io/api/networking/v1alpha3"
)

// gateway checks a Gateway's servers; two servers (of this Gateway or of
// another with the same selector) exposing the same host on the same
// port conflict, since only one can own the listener's filter chain.
// See https://istio.io/latest/docs/reference/config/analysis/ist0145/
func (v *validator) gateway(ns, name string, servers []*v1alpha3.Server, selector map[string]string) {
	key := Key{Kind: "Gateway", Namespace: ns, Name: name}
	if key.Namespace == "" {
		key.Namespace = DefaultNamespace
	}
	if len(servers) == 0 {
		v.errorf(key, "spec.servers", "required: at least one server (port, protocol and hosts)")
	}
	sel := selectorString(selector)
	for i, s := range servers {
		p := indexPath("spec.servers", i)
		if s.GetPort() == nil {
			v.errorf(key, p+".port", "required: the port the gateway listens on")
		} else {
			v.port(key, p+".port.number", s.GetPort().GetNumber())
			v.optionalPort(key, p+".port.targetPort", s.GetPort().GetTargetPort())
		}
		if len(s.GetHosts()) == 0 {
			v.errorf(key, p+".hosts", "required: at least one host, or \"*\"")
		}
		proto := strings.ToUpper(s.GetPort().GetProtocol())
		if (proto == "HTTPS" || proto == "TLS") && s.GetTls() == nil {
			v.errorf(key, p+".tls", "required when the protocol is %s", proto)
		} else if proto == "HTTPS" || proto == "TLS" {
			v.serverTLS(key, p+".tls", s.GetTls())
		}
		for j, h := range s.GetHosts() {
			hp := indexPath(p+".hosts", j)
			if h == "" {
				v.errorf(key, hp, "must not be empty")
				continue
			}
			_, host, found := strings.Cut(h, "/")
			if !found {
				host = h
			}
			// Servers bound to different addresses are different listeners.
			bind := s.GetBind()
			if bind == "0.0.0.0" {
				bind = ""
			}
			what := fmt.Sprintf("gateway %s bind %s port %d host %s", sel, bind, s.GetPort().GetNumber(), host)
			if prev, dup := v.claim(what, key, hp); dup {
				v.errorf(key, hp, "host %q on port %d is already served by %s (%s)", host, s.GetPort().GetNumber(), prev.key, prev.path)
			}
		}
	}
}

// serverTLS checks that a terminating server has a certificate: from a
// Kubernetes Secret (credentialName) or from files.
func (v *validator) serverTLS(key Key, p string, tls *v1alpha3.ServerTLSSettings) {
	mode := tls.GetMode()
	if mode != v1alpha3.ServerTLSSettings_SIMPLE && mode != v1alpha3.ServerTLSSettings_MUTUAL && mode != v1alpha3.ServerTLSSettings_OPTIONAL_MUTUAL {
		return
	}
	if tls.GetCredentialName() != "" || len(tls.GetCredentialNames()) > 0 || len(tls.GetTlsCertificates()) > 0 {
		return
	}
	if tls.GetServerCertificate() == "" || tls.GetPrivateKey() == "" {
		v.errorf(key, p+".credentialName", "required for %s TLS: name a Secret, or set serverCertificate and privateKey", mode)
		return
	}
	if mode != v1alpha3.ServerTLSSettings_SIMPLE && tls.GetCaCertificates() == "" {
		v.errorf(key, p+".caCertificates", "required for %s TLS: the CA that client certificates are verified against", mode)
	}
}

// virtualServiceHosts warns when two VirtualServices route the same host
// through the same gateway: Istio merges them in creation order, which a
// set of files does not have, so which route wins is unclear.
func (v *validator) virtualServiceHosts() {
	for _, r := range v.cfg.VirtualServices {
		key := keyOf("VirtualService", r)
		gateways := r.Spec.GetGateways()
		if len(gateways) == 0 {
			gateways = []string{"mesh"}
		}
		for _, gw := range gateways {
			if gw != "mesh" && !strings.Contains(gw, "/") {
				gw = key.Namespace + "/" + gw
			}
			for i, h := range r.Spec.GetHosts() {
				host := FQDN(h, key.Namespace)
				p := indexPath("spec.hosts", i)
				if prev, dup := v.claim("virtualservice "+gw+" "+host, key, p); dup && prev.key != key {
					v.warnf(key, p, "host %s on gateway %s is also routed by VirtualService %s/%s; their routes are merged in an unspecified order",
						host, gw, prev.key.Namespace, prev.key.Name)
				}
			}
		}
	}
}

func selectorString(sel map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(sel) {
		parts = append(parts, k+"="+sel[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// destinationRule checks a DestinationRule. Two rules for one host in one
// namespace are ambiguous (Istio merges them in creation order, which a
// directory of files does not have), so the second is an error.
func (v *validator) destinationRule(key Key, dr *v1alpha3.DestinationRule) {
	v.exportTo(key, dr.GetExportTo())
	if dr.GetHost() == "" {
		v.errorf(key, "spec.host", "required: the service the rule applies to")
	} else if dr.GetWorkloadSelector() == nil {
		host := FQDN(dr.GetHost(), key.Namespace)
		if prev, dup := v.claim("destinationrule "+key.Namespace+" "+host, key, "spec.host"); dup {
			v.errorf(key, "spec.host", "host %s already has DestinationRule %s/%s in this namespace; merge the two", host, prev.key.Namespace, prev.key.Name)
		}
	}
	v.trafficPolicy(key, "spec.trafficPolicy", dr.GetTrafficPolicy())
	seen := map[string]bool{}
	for i, s := range dr.GetSubsets() {
		p := indexPath("spec.subsets", i)
		switch {
		case s.GetName() == "":
			v.errorf(key, p+".name", "required: routes refer to the subset by name")
		case seen[s.GetName()]:
			v.errorf(key, p+".name", "subset %q is defined twice", s.GetName())
		}
		seen[s.GetName()] = true
		v.trafficPolicy(key, p+".trafficPolicy", s.GetTrafficPolicy())
	}
}

func (v *validator) trafficPolicy(key Key, p string, tp *v1alpha3.TrafficPolicy) {
	if tp == nil {
		return
	}
	v.outlierDetection(key, p+".outlierDetection", tp.GetOutlierDetection())
	v.connectionPool(key, p+".connectionPool", tp.GetConnectionPool())
	if ll := tp.GetLoadBalancer().GetLocalityLbSetting(); ll != nil {
		lp := p + ".loadBalancer.localityLbSetting"
		if len(ll.GetDistribute()) > 0 && len(ll.GetFailover()) > 0 {
			v.errorf(key, lp, "distribute and failover cannot both be set")
		}
		for i, r := range ll.GetFailoverPriority() {
			name, _, _ := strings.Cut(r, "=")
			switch {
			case name == "":
				v.errorf(key, indexPath(lp+".failoverPriority", i), "%q names no label", r)
			case len(ll.GetFailover()) > 0 && (name == "topology.kubernetes.io/region" || name == "topology.kubernetes.io/zone" || name == "topology.istio.io/subzone"):
				v.errorf(key, indexPath(lp+".failoverPriority", i), "the locality label %s cannot be used with failover; failover already orders by locality", name)
			}
		}
		if (len(ll.GetFailover()) > 0 || len(ll.GetFailoverPriority()) > 0) && tp.GetOutlierDetection() == nil {
			v.warnf(key, lp, "failover needs outlierDetection in the same traffic policy: without it no endpoint is ever taken out, and priorities are not applied")
		}
		for i, d := range ll.GetDistribute() {
			var sum uint32
			for _, w := range d.GetTo() {
				sum += w
			}
			if sum != 100 {
				v.errorf(key, indexPath(p+".loadBalancer.localityLbSetting.distribute", i)+".to", "the weights add up to %d, not 100", sum)
			}
		}
	}
	if rb := tp.GetRetryBudget(); rb != nil {
		if pc := rb.GetPercent(); pc != nil && (pc.GetValue() < 0 || pc.GetValue() > 100) {
			v.errorf(key, p+".retryBudget.percent", "percentage %v is out of range 0..100", pc.GetValue())
		}
		v.nonNegative(key, p+".retryBudget.budgetInterval", rb.GetBudgetInterval())
	}
	for i, pl := range tp.GetPortLevelSettings() {
		pp := indexPath(p+".portLevelSettings", i)
		if pl.GetPort() == nil {
			v.errorf(key, pp+".port", "required: the port these settings apply to")
		} else {
			v.port(key, pp+".port.number", pl.GetPort().GetNumber())
		}
		v.outlierDetection(key, pp+".outlierDetection", pl.GetOutlierDetection())
		v.connectionPool(key, pp+".connectionPool", pl.GetConnectionPool())
	}
}

func (v *validator) outlierDetection(key Key, p string, od *v1alpha3.OutlierDetection) {
	if od == nil {
		return
	}
	if n := od.GetMaxEjectionPercent(); n < 0 || n > 100 {
		v.errorf(key, p+".maxEjectionPercent", "percentage %d is out of range 0..100", n)
	}
	if n := od.GetMinHealthPercent(); n < 0 || n > 100 {
		v.errorf(key, p+".minHealthPercent", "percentage %d is out of range 0..100", n)
	}
	if t := od.GetFailurePercentageThreshold(); t != nil && t.GetValue() > 100 {
		v.errorf(key, p+".failurePercentageThreshold", "percentage %d is out of range 0..100", t.GetValue())
	}
	if od.GetConsecutiveErrors() < 0 {
		v.errorf(key, p+".consecutiveErrors", "must not be negative, got %d", od.GetConsecutiveErrors())
	}
	v.nonNegative(key, p+".interval", od.GetInterval())
	v.nonNegative(key, p+".baseEjectionTime", od.GetBaseEjectionTime())
}

func (v *validator) connectionPool(key Key, p string, cp *v1alpha3.ConnectionPoolSettings) {
	if cp == nil {
		return
	}
	if t := cp.GetTcp(); t != nil {
		if t.GetMaxConnections() < 0 {
			v.errorf(key, p+".tcp.maxConnections", "must not be negative, got %d", t.GetMaxConnections())
		}
		v.nonNegative(key, p+".tcp.connectTimeout", t.GetConnectTimeout())
		v.nonNegative(key, p+".tcp.idleTimeout", t.GetIdleTimeout())
	}
	if h := cp.GetHttp(); h != nil {
		for _, f := range []struct {
			name string
			n    int32
		}{
			{"http1MaxPendingRequests", h.GetHttp1MaxPendingRequests()},
			{"http2MaxRequests", h.GetHttp2MaxRequests()},
			{"maxRequestsPerConnection", h.GetMaxRequestsPerConnection()},
			{"maxRetries", h.GetMaxRetries()},
		} {
			if f.n < 0 {
				v.errorf(key, p+".http."+f.name, "must not be negative, got %d", f.n)
			}
		}
		v.nonNegative(key, p+".http.idleTimeout", h.GetIdleTimeout())
	}
}

// serviceEntry checks a ServiceEntry; STATIC resolution takes its
// addresses from endpoints or selected workloads, so it needs one of them.
func (v *validator) serviceEntry(key Key, se *v1alpha3.ServiceEntry) {
	v.exportTo(key, se.GetExportTo())
	if len(se.GetHosts()) == 0 {
		v.errorf(key, "spec.hosts", "required: at least one host")
	}
	for i, pt := range se.GetPorts() {
		p := indexPath("spec.ports", i)
		v.port(key, p+".number", pt.GetNumber())
		v.optionalPort(key, p+".targetPort", pt.GetTargetPort())
	}
	if se.GetResolution() == v1alpha3.ServiceEntry_STATIC && len(se.GetEndpoints()) == 0 && se.GetWorkloadSelector() == nil {
		v.errorf(key, "spec.endpoints", "required when resolution is STATIC: list endpoints or set workloadSelector")
	}
	for i, e := range se.GetEndpoints() {
		p := indexPath("spec.endpoints", i)
		if se.GetResolution() == v1alpha3.ServiceEntry_STATIC && e.GetAddress() == "" {
			v.errorf(key, p+".address", "required when resolution is STATIC")
		}
		for _, name := range sortedKeys(e.GetPorts()) {
			v.port(key, fieldPath(p+".ports", name), e.GetPorts()[name])
		}
	}
}

func (v *validator) workloadEntry(key Key, we *v1alpha3.WorkloadEntry) {
	if we.GetAddress() == "" && we.GetNetwork() == "" {
		v.errorf(key, "spec.address", "required: the workload's IP address or DNS name")
	}
	for _, name := range sortedKeys(we.GetPorts()) {
		v.port(key, fieldPath("spec.ports", name), we.GetPorts()[name])
	}
}
