package dnsplugin

import (
	"context"
	"fmt"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
	mcsinformers "sigs.k8s.io/mcs-api/pkg/client/informers/externalversions"
)

// syncTimeout is how long Start waits for the informers before the server
// starts answering anyway (with SERVFAIL inside the zone until synced).
const syncTimeout = 5 * time.Second

// restConfig reaches the cluster the plugin serves.
func (k *Kosmos) restConfig() (*rest.Config, error) {
	if k.Kubeconfig == "" && k.Context == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration (set kubeconfig in the Corefile when running outside a cluster): %w", err)
		}
		return cfg, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: k.Kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s (context %q): %w", k.Kubeconfig, k.Context, err)
	}
	return cfg, nil
}

// Start watches ServiceImports and imported EndpointSlices in the cluster
// and keeps the index current. It waits a few seconds for the first sync.
func (k *Kosmos) Start() error {
	cfg, err := k.restConfig()
	if err != nil {
		return fmt.Errorf("plugin/%s: %w", Name, err)
	}
	cfg.UserAgent = "kosmos-dns"
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("plugin/%s: %w", Name, err)
	}
	mc, err := mcsclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("plugin/%s: %w", Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k.stop = cancel
	kf := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = mcsv1a1.LabelServiceName + "," + mcsv1a1.LabelSourceCluster
	}))
	mf := mcsinformers.NewSharedInformerFactory(mc, 0)
	epInf := kf.Discovery().V1().EndpointSlices()
	siInf := mf.Multicluster().V1alpha1().ServiceImports()
	changed := make(chan struct{}, 1)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal(changed) },
		UpdateFunc: func(any, any) { signal(changed) },
		DeleteFunc: func(any) { signal(changed) },
	}
	if _, err := epInf.Informer().AddEventHandler(h); err != nil {
		cancel()
		return fmt.Errorf("plugin/%s: %w", Name, err)
	}
	if _, err := siInf.Informer().AddEventHandler(h); err != nil {
		cancel()
		return fmt.Errorf("plugin/%s: %w", Name, err)
	}
	kf.Start(ctx.Done())
	mf.Start(ctx.Done())
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), epInf.Informer().HasSynced, siInf.Informer().HasSynced) {
			return
		}
		k.rebuild(siInf.Lister().List, epInf.Lister().List)
		k.synced.Store(true)
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				k.rebuild(siInf.Lister().List, epInf.Lister().List)
			}
		}
	}()
	select {
	case <-waitSynced(ctx, k):
	case <-time.After(syncTimeout):
	}
	return nil
}

// waitSynced closes once the plugin is ready or ctx ends.
func waitSynced(ctx context.Context, k *Kosmos) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for !k.Ready() {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}

// Stop ends the watches.
func (k *Kosmos) Stop() error {
	if k.stop != nil {
		k.stop()
	}
	return nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// rebuild builds the indexes of every zone from the informers' caches.
func (k *Kosmos) rebuild(listImports func(labels.Selector) ([]*mcsv1a1.ServiceImport, error), listSlices func(labels.Selector) ([]*discoveryv1.EndpointSlice, error)) {
	sis, err := listImports(labels.Everything())
	if err != nil {
		return
	}
	eps, err := listSlices(labels.Everything())
	if err != nil {
		return
	}
	serial := uint32(time.Now().Unix())
	m := make(map[string]*Index, len(k.Zones))
	for _, z := range k.Zones {
		if isReverse(z) {
			continue // PTR records live in the forward zone's index
		}
		idx := Build(BuildOptions{Zone: z, Cluster: k.Cluster, TTL: k.TTL, Serial: serial}, sis, eps)
		m[z] = idx
		indexNames.WithLabelValues(z).Set(float64(idx.Size()))
	}
	k.setIndexes(m)
	indexBuilds.Inc()
}
