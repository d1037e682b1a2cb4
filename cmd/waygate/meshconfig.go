package main

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"
)

// loadMeshConfig reads an Istio mesh config file: the YAML istiod reads
// from the "mesh" key of the istio ConfigMap (extensionProviders,
// accessLogFile, ...). Waygate uses its extensionProviders, the external
// authorizers of CUSTOM AuthorizationPolicies.
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

// extensionProviders are the --mesh-config file's extensionProviders,
// none without the flag.
func (f *sourceFlags) extensionProviders() ([]*meshconfig.MeshConfig_ExtensionProvider, error) {
	if f.meshConfig == "" {
		return nil, nil
	}
	mc, err := loadMeshConfig(f.meshConfig)
	if err != nil {
		return nil, err
	}
	return mc.GetExtensionProviders(), nil
}
