package client

import (
	"os"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// IstioVersion is the proxy version Waygate presents to istiod in the
// ISTIO_VERSION node metadata. istiod gates generated config on it, so it
// names the Istio release whose API Waygate is built against.
const IstioVersion = "1.32.0"

// UserAgent is the node's user_agent_name, which istiod shows in
// `istioctl proxy-status` and uses to tell proxy kinds apart.
const UserAgent = "waygate"

// NewNode builds the node the way an Istio ingress gateway presents itself
// to istiod, so istiod generates gateway (router) config for it and selects
// Gateway resources by its labels.
//
// An empty id becomes `router~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`,
// the service node format istiod parses (pilot/pkg/model ParseServiceNodeWithMetadata);
// the pod name is $POD_NAME, else the host name, as in a Kubernetes pod.
// cluster is the Envoy service cluster (istio-ingressgateway.istio-system
// for the stock gateway). The metadata keys are those of istiod's
// NodeMetadata and BootstrapNodeMetadata JSON names.
func NewNode(id, cluster, namespace string, labels map[string]string, ip string) *corev3.Node {
	pod := podName(id)
	if id == "" {
		id = "router~" + ip + "~" + pod + "." + namespace + "~" + namespace + ".svc.cluster.local"
	}
	lbl := make(map[string]any, len(labels))
	for k, v := range labels {
		lbl[k] = v
	}
	fields := map[string]any{
		"LABELS":        lbl,
		"NAMESPACE":     namespace,
		"CLUSTER_ID":    "Kubernetes",
		"ISTIO_VERSION": IstioVersion,
		"NAME":          pod,
		"WORKLOAD_NAME": workloadName(cluster, labels, pod),
	}
	if ip != "" {
		fields["INSTANCE_IPS"] = ip
	}
	md, err := structpb.NewStruct(fields)
	if err != nil {
		// Only strings and string maps go in above; NewStruct cannot fail.
		panic(err)
	}
	return &corev3.Node{
		Id:                   id,
		Cluster:              cluster,
		Metadata:             md,
		UserAgentName:        UserAgent,
		UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: IstioVersion},
	}
}

// podName takes the pod name from an Istio service node id when one is
// given, else from the environment.
func podName(id string) string {
	if parts := strings.Split(id, "~"); len(parts) == 4 {
		if pod, _, ok := strings.Cut(parts[2], "."); ok || pod != "" {
			return pod
		}
	}
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	h, _ := os.Hostname()
	return h
}

// workloadName is what istiod reports as the workload: the canonical
// service label Istio sets, else the app label, else the service cluster's
// name, else the pod.
func workloadName(cluster string, labels map[string]string, pod string) string {
	for _, k := range []string{"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"} {
		if v := labels[k]; v != "" {
			return v
		}
	}
	if name, _, _ := strings.Cut(cluster, "."); name != "" {
		return name
	}
	return pod
}
