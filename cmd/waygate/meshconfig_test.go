package main

import (
	"strings"
	"testing"
)

func TestProxyConfigStruct(t *testing.T) {
	s, err := proxyConfigStruct("{gatewayTopology: {numTrustedProxies: 1, forwardClientCertDetails: APPEND_FORWARD}}")
	if err != nil {
		t.Fatal(err)
	}
	topo := s.GetFields()["gatewayTopology"].GetStructValue().GetFields()
	if topo["numTrustedProxies"].GetNumberValue() != 1 || topo["forwardClientCertDetails"].GetStringValue() != "APPEND_FORWARD" {
		t.Errorf("PROXY_CONFIG %v", s)
	}
	if _, err := proxyConfigStruct("{gatewayTopologie: {numTrustedProxies: 1}}"); err == nil || !strings.Contains(err.Error(), "gatewayTopologie") {
		t.Errorf("a misspelled field: %v", err)
	}
}
