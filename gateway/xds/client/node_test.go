package client

import (
	"testing"
)

func TestNewNode(t *testing.T) {
	t.Setenv("POD_NAME", "istio-ingressgateway-5d9c8f7b6-x2x9p")
	for _, tc := range []struct {
		name     string
		id       string
		cluster  string
		labels   map[string]string
		wantID   string
		wantPod  string
		workload string
	}{{
		name:     "id built from the pod",
		cluster:  "istio-ingressgateway.istio-system",
		labels:   map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"},
		wantID:   "router~10.1.2.3~istio-ingressgateway-5d9c8f7b6-x2x9p.istio-system~istio-system.svc.cluster.local",
		wantPod:  "istio-ingressgateway-5d9c8f7b6-x2x9p",
		workload: "istio-ingressgateway",
	}, {
		name:     "given id names the pod",
		id:       "router~10.9.9.9~gw-7.edge~edge.svc.cluster.local",
		cluster:  "waygate.istio-system",
		wantID:   "router~10.9.9.9~gw-7.edge~edge.svc.cluster.local",
		wantPod:  "gw-7",
		workload: "waygate",
	}, {
		name:     "canonical name label wins",
		id:       "waygate-dev",
		labels:   map[string]string{"service.istio.io/canonical-name": "edge", "app": "other"},
		wantID:   "waygate-dev",
		wantPod:  "istio-ingressgateway-5d9c8f7b6-x2x9p",
		workload: "edge",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNode(tc.id, tc.cluster, "istio-system", tc.labels, "10.1.2.3")
			if n.GetId() != tc.wantID || n.GetCluster() != tc.cluster || n.GetUserAgentName() != "waygate" {
				t.Fatalf("node = %v", n)
			}
			md := n.GetMetadata().GetFields()
			for key, want := range map[string]string{
				"NAMESPACE":     "istio-system",
				"CLUSTER_ID":    "Kubernetes",
				"ISTIO_VERSION": IstioVersion,
				"NAME":          tc.wantPod,
				"WORKLOAD_NAME": tc.workload,
				"INSTANCE_IPS":  "10.1.2.3",
			} {
				if got := md[key].GetStringValue(); got != want {
					t.Errorf("metadata %s = %q, want %q", key, got, want)
				}
			}
			labels := md["LABELS"].GetStructValue().GetFields()
			if len(labels) != len(tc.labels) {
				t.Errorf("LABELS = %v, want %v", labels, tc.labels)
			}
			for k, v := range tc.labels {
				if labels[k].GetStringValue() != v {
					t.Errorf("LABELS[%s] = %v, want %q", k, labels[k], v)
				}
			}
		})
	}
}
