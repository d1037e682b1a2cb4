package istio

// A real API server cannot run on this machine (no container engine, and
// no network to download kube-apiserver), so the Kubernetes source is
// tested on client-go's fake clientsets. They serve the same informers,
// listers and watches the real clients do, from an in-memory tracker.

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"istio.io/api/networking/v1alpha3"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestMain turns off client-go's streaming lists (WatchListClient, on by
// default since 1.35) for this package's tests: Istio's generated
// informers do not tell the reflector that the fake clientset cannot
// stream a list, so it would wait forever for the initial events. A real
// API server streams them; client-go reads this gate once, at first use.
func TestMain(m *testing.M) {
	os.Setenv("KUBE_FEATURE_WatchListClient", "false")
	os.Exit(m.Run())
}

func ptr[T any](v T) *T { return &v }

func reviewsObjects() []runtime.Object {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "reviews-abc", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "reviews"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(9080))}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.1"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "reviews-v1-x"}, Zone: ptr("z1")},
			{Addresses: []string{"10.0.0.2"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "reviews-v2-y"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
		},
	}
	return []runtime.Object{
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9080, TargetPort: intstr.FromInt32(9080)}}},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: "default"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}},
		},
		slice,
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1-x", Namespace: "default", Labels: map[string]string{"app": "reviews", "version": "v1"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "reviews-v2-y", Namespace: "default", Labels: map[string]string{"app": "reviews", "version": "v2"}}},
	}
}

func virtualService(name, host string, weights ...int32) *networking.VirtualService {
	vs := &networking.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	vs.Spec.Hosts = []string{host}
	route := &v1alpha3.HTTPRoute{}
	if len(weights) == 0 {
		weights = []int32{0}
	}
	for i, w := range weights {
		d := &v1alpha3.Destination{Host: host}
		if host == "reviews" { // the host with a DestinationRule
			d.Subset = []string{"v1", "v2"}[i%2]
		}
		route.Route = append(route.Route, &v1alpha3.HTTPRouteDestination{Destination: d, Weight: w})
	}
	vs.Spec.Http = []*v1alpha3.HTTPRoute{route}
	return vs
}

// kubeSource runs watchClients on fake clientsets until the test ends.
type kubeSource struct {
	kube    *kubefake.Clientset
	ist     *istiofake.Clientset
	updates chan update
	watches atomic.Int32
}

func startKube(t *testing.T, debounce time.Duration) *kubeSource {
	t.Helper()
	dr := &networking.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default"}}
	dr.Spec.Host = "reviews"
	dr.Spec.Subsets = []*v1alpha3.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}}}
	s := &kubeSource{
		kube:    kubefake.NewSimpleClientset(reviewsObjects()...),
		ist:     istiofake.NewSimpleClientset(dr, virtualService("reviews", "reviews")),
		updates: make(chan update, 100),
	}
	count := func(k8stesting.Action) (bool, watch.Interface, error) {
		s.watches.Add(1)
		return false, nil, nil
	}
	s.kube.PrependWatchReactor("*", count)
	s.ist.PrependWatchReactor("*", count)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- watchClients(ctx, s.kube, s.ist, debounce, func(c *Config, f []Finding) { s.updates <- update{c, f} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watchClients: %v", err)
		}
	})
	return s
}

// waitWatching waits until every informer has opened its watch: the fake
// tracker does not replay what happens between an informer's list and its
// watch, as a real API server does with resource versions.
func (s *kubeSource) waitWatching(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.watches.Load() < 13 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 13 informers watching", s.watches.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
}

func TestWatchKubernetes(t *testing.T) {
	s := startKube(t, 50*time.Millisecond)
	ctx := context.Background()

	u := next(t, s.updates, 10*time.Second)
	if u.names() != "DestinationRule/reviews VirtualService/reviews" || len(u.findings) != 0 {
		t.Fatalf("initial = %q, findings %v", u.names(), u.findings)
	}
	if got := u.cfg.VirtualServices[0].APIVersion; got != "networking.istio.io/v1" {
		t.Errorf("apiVersion = %q", got)
	}
	if len(u.cfg.Services) != 2 || u.cfg.Services[0].Name != "ratings" || len(u.cfg.Services[0].Endpoints) != 0 {
		t.Fatalf("services = %+v", u.cfg.Services)
	}
	svc := u.cfg.Services[1]
	if svc.Hostname != "reviews.default.svc.cluster.local" || len(svc.Ports) != 1 || svc.Ports[0] != (ServicePort{Name: "http", Port: 9080, Protocol: "HTTP", TargetPort: 9080}) {
		t.Errorf("service = %+v", svc)
	}
	if len(svc.Endpoints) != 2 {
		t.Fatalf("endpoints = %+v", svc.Endpoints)
	}
	e1, e2 := svc.Endpoints[0], svc.Endpoints[1]
	if e1.Address != "10.0.0.1" || e1.Labels["version"] != "v1" || !e1.Ready || e1.Ports["http"] != 9080 || e1.Locality != "/z1" {
		t.Errorf("endpoint 1 = %+v", e1)
	}
	if e2.Address != "10.0.0.2" || e2.Labels["version"] != "v2" || e2.Ready {
		t.Errorf("endpoint 2 = %+v", e2)
	}
	s.waitWatching(t)

	// A new resource arrives.
	if _, err := s.ist.NetworkingV1().VirtualServices("default").Create(ctx, virtualService("ratings", "ratings"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if u = next(t, s.updates, 5*time.Second); u.names() != "DestinationRule/reviews VirtualService/ratings VirtualService/reviews" {
		t.Errorf("after create = %q", u.names())
	}

	// EnvoyFilters come from the cluster too.
	ef := &networkingv1alpha3.EnvoyFilter{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "istio-system"}}
	ef.Spec.ConfigPatches = []*v1alpha3.EnvoyFilter_EnvoyConfigObjectPatch{{
		ApplyTo: v1alpha3.EnvoyFilter_CLUSTER,
		Patch:   &v1alpha3.EnvoyFilter_Patch{Operation: v1alpha3.EnvoyFilter_Patch_REMOVE},
	}}
	if _, err := s.ist.NetworkingV1alpha3().EnvoyFilters("istio-system").Create(ctx, ef, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if u = next(t, s.updates, 5*time.Second); !strings.Contains(u.names(), "EnvoyFilter/edge") || u.cfg.EnvoyFilters[0].APIVersion != "networking.istio.io/v1alpha3" {
		t.Errorf("after creating an EnvoyFilter = %q", u.names())
	}
	if err := s.ist.NetworkingV1alpha3().EnvoyFilters("istio-system").Delete(ctx, "edge", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if u = next(t, s.updates, 5*time.Second); strings.Contains(u.names(), "EnvoyFilter") {
		t.Errorf("after deleting the EnvoyFilter = %q", u.names())
	}

	// An update that breaks a resource keeps its last valid version.
	if _, err := s.ist.NetworkingV1().VirtualServices("default").Update(ctx, virtualService("reviews", "reviews", 60, 30), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	u = next(t, s.updates, 5*time.Second)
	got := strings.Join(formatFindings(u.findings), "\n")
	want := "error: VirtualService default/reviews: spec.http[0].route[1].weight: weights sum to 90, must be 100\n" +
		"warning: VirtualService default/reviews: the current version has errors; the last valid version is still served"
	if got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
	for _, vs := range u.cfg.VirtualServices {
		if vs.Name == "reviews" && len(vs.Spec.GetHttp()[0].GetRoute()) != 1 {
			t.Errorf("served the broken version: %v", vs.Spec.GetHttp())
		}
	}

	// Relabeling a Pod moves its endpoint to another subset.
	pod, err := s.kube.CoreV1().Pods("default").Get(ctx, "reviews-v2-y", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod = pod.DeepCopy()
	pod.Labels["version"] = "v3"
	if _, err := s.kube.CoreV1().Pods("default").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	u = next(t, s.updates, 5*time.Second)
	if got := u.cfg.Services[1].Endpoints[1].Labels["version"]; got != "v3" {
		t.Errorf("relabeled endpoint version = %q", got)
	}

	// Deleting removes, even a resource whose last version was broken.
	if err := s.ist.NetworkingV1().VirtualServices("default").Delete(ctx, "reviews", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if u = next(t, s.updates, 5*time.Second); u.names() != "DestinationRule/reviews VirtualService/ratings" || len(u.findings) != 0 {
		t.Errorf("after delete = %q, %v", u.names(), u.findings)
	}
}

func TestWatchKubernetesDebounces(t *testing.T) {
	const debounce = 300 * time.Millisecond
	s := startKube(t, debounce)
	next(t, s.updates, 10*time.Second)
	s.waitWatching(t)
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		if _, err := s.ist.NetworkingV1().VirtualServices("default").Create(context.Background(), virtualService(name, name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	u := next(t, s.updates, 5*time.Second)
	if len(u.cfg.VirtualServices) != 6 {
		t.Errorf("after burst = %q, want all five new ones in one update", u.names())
	}
	quiet(t, s.updates, 3*debounce)
}

func TestPortProtocol(t *testing.T) {
	tests := []struct {
		port corev1.ServicePort
		want string
	}{
		{corev1.ServicePort{Name: "http"}, "HTTP"},
		{corev1.ServicePort{Name: "http-web"}, "HTTP"},
		{corev1.ServicePort{Name: "grpc-api"}, "GRPC"},
		{corev1.ServicePort{Name: "tcp-db"}, "TCP"},
		{corev1.ServicePort{Name: "web"}, ""},
		{corev1.ServicePort{Name: "web", AppProtocol: ptr("http2")}, "HTTP2"},
		{corev1.ServicePort{Name: "web", AppProtocol: ptr("kubernetes.io/h2c")}, "HTTP2"},
		{corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP}, "UDP"},
	}
	for _, tt := range tests {
		if got := portProtocol(tt.port); got != tt.want {
			t.Errorf("portProtocol(%+v) = %q, want %q", tt.port, got, tt.want)
		}
	}
}
