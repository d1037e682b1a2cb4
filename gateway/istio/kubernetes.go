package istio

import (
	"context"
	"fmt"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// WatchKubernetes serves the Istio resources of a Kubernetes cluster, and
// its Services with their endpoints, the way WatchDir serves a directory:
// onChange gets the initial state once every informer has synced, then
// every change, debounced (DefaultDebounce) so a rollout touching many
// EndpointSlices is one update. kubeconfig "" means in-cluster
// configuration. It returns when ctx is done, or an error if the clients
// cannot be built. The Istio CRDs must be installed: until they list, the
// first onChange waits.
func WatchKubernetes(ctx context.Context, kubeconfig string, onChange func(*Config, []Finding)) error {
	var rc *rest.Config
	var err error
	if kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ist, err := istioclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("istio client: %w", err)
	}
	return watchClients(ctx, kube, ist, DefaultDebounce, onChange)
}

// watchClients is WatchKubernetes on given clients, so that tests can run
// it on client-go's fake clientsets: no API server can run here.
func watchClients(ctx context.Context, kube kubernetes.Interface, ist istioclient.Interface, debounce time.Duration, onChange func(*Config, []Finding)) error {
	kf := informers.NewSharedInformerFactory(kube, 0)
	inf := istioinformers.NewSharedInformerFactory(ist, 0)
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	l := listers{
		gateways:         inf.Networking().V1().Gateways(),
		virtualServices:  inf.Networking().V1().VirtualServices(),
		destinationRules: inf.Networking().V1().DestinationRules(),
		serviceEntries:   inf.Networking().V1().ServiceEntries(),
		workloadEntries:  inf.Networking().V1().WorkloadEntries(),
		authorization:    inf.Security().V1().AuthorizationPolicies(),
		requestAuthn:     inf.Security().V1().RequestAuthentications(),
		peerAuthn:        inf.Security().V1().PeerAuthentications(),
		wasmPlugins:      inf.Extensions().V1alpha1().WasmPlugins(),
		envoyFilters:     inf.Networking().V1alpha3().EnvoyFilters(),
		services:         kf.Core().V1().Services(),
		endpointSlices:   kf.Discovery().V1().EndpointSlices(),
		pods:             kf.Core().V1().Pods(),
	}
	for _, i := range l.informers() {
		if _, err := i.AddEventHandler(handler); err != nil {
			return err
		}
	}
	kf.Start(ctx.Done())
	inf.Start(ctx.Done())
	defer kf.Shutdown()
	defer inf.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), l.synced()...) {
		return ctx.Err()
	}

	var prev *Config
	rebuild := func() {
		cfg, err := l.build()
		var findings []Finding
		if err != nil {
			findings = []Finding{{Severity: Error, Message: "listing resources: " + err.Error()}}
		}
		prev, findings = Accept(prev, cfg, findings)
		onChange(prev, findings)
	}
	// Drain the notifications of the initial listing: rebuild covers them.
	select {
	case <-changed:
	default:
	}
	rebuild()

	timer := time.NewTimer(debounce)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-changed:
			timer.Reset(debounce)
		case <-timer.C:
			rebuild()
		}
	}
}

// listers holds the informers the Kubernetes source reads from.
type listers struct {
	envoyFilters interface {
		Informer() cache.SharedIndexInformer
	}
	gateways interface {
		Informer() cache.SharedIndexInformer
	}
	virtualServices interface {
		Informer() cache.SharedIndexInformer
	}
	destinationRules interface {
		Informer() cache.SharedIndexInformer
	}
	serviceEntries interface {
		Informer() cache.SharedIndexInformer
	}
	workloadEntries interface {
		Informer() cache.SharedIndexInformer
	}
	authorization interface {
		Informer() cache.SharedIndexInformer
	}
	requestAuthn interface {
		Informer() cache.SharedIndexInformer
	}
	peerAuthn interface {
		Informer() cache.SharedIndexInformer
	}
	wasmPlugins interface {
		Informer() cache.SharedIndexInformer
	}
	services interface {
		Informer() cache.SharedIndexInformer
	}
	endpointSlices interface {
		Informer() cache.SharedIndexInformer
	}
	pods interface {
		Informer() cache.SharedIndexInformer
	}
}

func (l listers) informers() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{
		l.gateways.Informer(), l.virtualServices.Informer(), l.destinationRules.Informer(),
		l.serviceEntries.Informer(), l.workloadEntries.Informer(), l.authorization.Informer(),
		l.requestAuthn.Informer(), l.peerAuthn.Informer(), l.wasmPlugins.Informer(), l.envoyFilters.Informer(),
		l.services.Informer(), l.endpointSlices.Informer(), l.pods.Informer(),
	}
}

func (l listers) synced() []cache.InformerSynced {
	var out []cache.InformerSynced
	for _, i := range l.informers() {
		out = append(out, i.HasSynced)
	}
	return out
}
