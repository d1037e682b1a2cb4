package translate

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	netwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	extensions "istio.io/client-go/pkg/apis/extensions/v1alpha1"
)

// The type URLs a plugin's config_discovery accepts, as istiod lists
// them: the Wasm filter, and RBAC, which istio-agent puts in its place
// (allow or deny all, by failStrategy) when it cannot fetch the module.
const (
	wasmHTTPType    = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	rbacHTTPType    = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	wasmNetworkType = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
	rbacNetworkType = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
)

// The VM environment variables istiod adds for istio-agent's module
// fetch: the image pull secret, the pull policy, and the WasmPlugin's
// resource version (a new version re-pulls an IfNotPresent image).
const (
	wasmSecretEnv          = "ISTIO_META_WASM_IMAGE_PULL_SECRET"
	wasmPolicyEnv          = "ISTIO_META_WASM_IMAGE_PULL_POLICY"
	wasmResourceVersionEnv = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"
)

// wasmRuntime is the runtime istiod names; Waygate runs every plugin on
// its own host whatever the name.
const wasmRuntime = "envoy.wasm.runtime.v8"

// wasmRemoteTimeout is the http_uri timeout istiod sets.
const wasmRemoteTimeout = 30 * time.Second

// wasmConfigSource is a plugin filter's config_discovery: the resource
// comes over ADS, and the listener waits for it however long it takes
// (initial_fetch_timeout 0), since it may be critical for security.
// istiod sets no default_config.
func wasmConfigSource(typeURLs ...string) *corev3.ExtensionConfigSource {
	return &corev3.ExtensionConfigSource{ConfigSource: adsConfigSource(), TypeUrls: typeURLs}
}

// wasmExtensionConfig is the ECDS resource istiod serves for a
// WasmPlugin: named after the filter, holding the HTTP or network Wasm
// filter with plugin name <namespace>.<name>, root_id the pluginName,
// the V8 runtime, the module from url (file:// read locally; http(s)://
// and oci:// (also a url without scheme) as a remote http_uri with the
// sha256), pluginConfig as a JSON StringValue (an empty Any when
// unset), vmConfig.env and istiod's pull settings as environment
// variables, failStrategy as the failure policy. nil when the plugin
// cannot be served (bad url or pluginConfig), with a warning.
func (t *translator) wasmExtensionConfig(p *extensions.WasmPlugin) *corev3.TypedExtensionConfig {
	spec := &p.Spec
	code, ok := t.wasmCode(p)
	if !ok {
		return nil
	}
	pc := &wasmv3.PluginConfig{
		Name:          p.Namespace + "." + p.Name,
		RootId:        spec.GetPluginName(),
		Configuration: &anypb.Any{},
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			Runtime:              wasmRuntime,
			Code:                 code,
			EnvironmentVariables: wasmEnv(p),
		}},
	}
	if c := spec.GetPluginConfig(); c != nil && len(c.GetFields()) > 0 {
		// encoding/json writes map keys in order and no random
		// spacing (protojson varies its spacing from one build to the
		// next on purpose), so the config's bytes depend on the plugin
		// alone.
		js, err := json.Marshal(c.AsMap())
		if err != nil {
			t.warn(wasmKey(p), "spec.pluginConfig", "cannot be written as JSON: %v; the plugin is ignored", err)
			return nil
		}
		pc.Configuration = deterministicAny(wrapperspb.String(string(js)))
	}
	switch spec.GetFailStrategy() {
	case extensionsv1alpha1.FailStrategy_FAIL_OPEN:
		pc.FailurePolicy = wasmv3.FailurePolicy_FAIL_OPEN
	case extensionsv1alpha1.FailStrategy_FAIL_CLOSE:
		pc.FailurePolicy = wasmv3.FailurePolicy_FAIL_CLOSED
	case extensionsv1alpha1.FailStrategy_FAIL_RELOAD:
		pc.FailurePolicy = wasmv3.FailurePolicy_FAIL_RELOAD
	}
	var filter proto.Message = &wasmfilterv3.Wasm{Config: pc}
	if spec.GetType() == extensionsv1alpha1.PluginType_NETWORK {
		filter = &netwasmv3.Wasm{Config: pc}
	}
	return &corev3.TypedExtensionConfig{
		Name:        wasmFilterPrefix + p.Namespace + "." + p.Name + wasmFilterSuffix,
		TypedConfig: deterministicAny(filter),
	}
}

// wasmCode is the module's data source, as istiod's buildDataSource.
func (t *translator) wasmCode(p *extensions.WasmPlugin) (*corev3.AsyncDataSource, bool) {
	raw := p.Spec.GetUrl()
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		t.warn(wasmKey(p), "spec.url", "%q is not a URL; the plugin is ignored", raw)
		return nil, false
	}
	if u.Scheme == "" {
		// istiod reads a url without scheme as an OCI image.
		u.Scheme = "oci"
	}
	switch u.Scheme {
	case "file":
		return &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
			Specifier: &corev3.DataSource_Filename{Filename: strings.TrimPrefix(raw, "file://")},
		}}}, true
	case "http", "https", "oci":
	default:
		t.warn(wasmKey(p), "spec.url", "scheme %q is not one of file, http, https, oci; the plugin is ignored", u.Scheme)
		return nil, false
	}
	return &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
		HttpUri: &corev3.HttpUri{
			Uri:     u.String(),
			Timeout: durationpb.New(wasmRemoteTimeout),
			// istio-agent fetches the module itself, so istiod names
			// no real cluster; Waygate's fetcher does the same.
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "_"},
		},
		Sha256: p.Spec.GetSha256(),
	}}}, true
}

// wasmEnv is the VM's environment as istiod's buildVMConfig writes it:
// the pull secret (empty here: istiod sends its content only to a proxy
// with a verified identity, and Waygate's control plane holds no
// Kubernetes secrets), the pull policy when set, the resource version
// always, then vmConfig.env (INLINE values, HOST keys).
func wasmEnv(p *extensions.WasmPlugin) *wasmv3.EnvironmentVariables {
	spec := &p.Spec
	ev := &wasmv3.EnvironmentVariables{KeyValues: map[string]string{}}
	if spec.GetImagePullSecret() != "" {
		ev.KeyValues[wasmSecretEnv] = ""
	}
	if pp := spec.GetImagePullPolicy(); pp != extensionsv1alpha1.PullPolicy_UNSPECIFIED_POLICY {
		ev.KeyValues[wasmPolicyEnv] = pp.String()
	}
	ev.KeyValues[wasmResourceVersionEnv] = p.ResourceVersion
	if env := spec.GetVmConfig().GetEnv(); len(env) > 0 {
		keys := make([]string, 0, len(env))
		for _, e := range env {
			switch e.GetValueFrom() {
			case extensionsv1alpha1.EnvValueSource_INLINE:
				ev.KeyValues[e.GetName()] = e.GetValue()
			case extensionsv1alpha1.EnvValueSource_HOST:
				keys = append(keys, e.GetName())
			}
		}
		ev.HostEnvKeys = keys
	}
	return ev
}
