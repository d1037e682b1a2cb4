package main

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/waygate/waygate/gateway/xds/server"
	"sigs.k8s.io/yaml"
)

// loadMeshConfig reads an Istio mesh config file: the YAML istiod reads
// from the "mesh" key of the istio ConfigMap (extensionProviders,
// accessLogFile, ...). Waygate uses its extensionProviders, the external
// authorizers of CUSTOM AuthorizationPolicies, and
// defaultConfig.gatewayTopology.
// https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/
func loadMeshConfig(path string) (*meshconfig.MeshConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	mc := &meshconfig.MeshConfig{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, mc); err != nil {
		return nil, fmt.Errorf("%s: not an Istio mesh config: %v", path, err)
	}
	for i, p := range mc.GetExtensionProviders() {
		if p.GetName() == "" {
			return nil, fmt.Errorf("%s: extensionProviders[%d].name: required", path, i)
		}
	}
	return mc, nil
}

// applyMeshConfig gives the control plane what it uses of the
// --mesh-config file: extensionProviders, and
// defaultConfig.gatewayTopology for gateways whose node brings no
// ProxyConfig of their own. Without the flag, nothing changes.
func (f *sourceFlags) applyMeshConfig(cp *server.Server) error {
	if f.meshConfig == "" {
		return nil
	}
	mc, err := loadMeshConfig(f.meshConfig)
	if err != nil {
		return err
	}
	cp.ExtensionProviders = mc.GetExtensionProviders()
	cp.GatewayTopology = mc.GetDefaultConfig().GetGatewayTopology()
	return nil
}

// proxyConfigStruct checks ProxyConfig YAML or JSON (the form of the
// proxy.istio.io/config annotation) and returns it as node metadata: an
// unknown field is an error, so a typo does not go unnoticed.
func proxyConfigStruct(text string) (*structpb.Struct, error) {
	js, err := yaml.YAMLToJSON([]byte(text))
	if err != nil {
		return nil, err
	}
	var pc meshconfig.ProxyConfig
	if err := protojson.Unmarshal(js, &pc); err != nil {
		return nil, fmt.Errorf("not a ProxyConfig: %v", err)
	}
	out, err := protojson.Marshal(&pc)
	if err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(out, s); err != nil {
		return nil, err
	}
	return s, nil
}
