package dnsplugin

import (
	"context"
	"fmt"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
	mcsinformers "sigs.k8s.io/mcs-api/pkg/client/informers/externalversions"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// The plugin reads only what the Kosmos reconciler writes: objects that
// carry its managed-by and topology labels. A ServiceImport or an MCS-labelled
// EndpointSlice created by anyone else (another MCS implementation, a user
// who may write in one namespace) is neither watched nor answered.
var (
	importSelector = managedSelector()
	sliceSelector  = managedSelector(mcsv1a1.LabelServiceName, mcsv1a1.LabelSourceCluster)
)

// managedSelector selects managed-by=kosmos objects that also carry the
// topology label and every one of keys.
func managedSelector(keys ...string) labels.Selector {
	sel := labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy})
	for _, k := range append([]string{v1alpha1.LabelTopology}, keys...) {
		if r, err := labels.NewRequirement(k, selection.Exists, nil); err == nil { // constant keys: no error
			sel = sel.Add(*r)
		}
	}
	return sel
}

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

// Start watches the Kosmos-managed ServiceImports and imported EndpointSlices
// in the cluster and keeps the index current. It waits a few seconds for the first sync.
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
		o.LabelSelector = sliceSelector.String()
	}))
	mf := mcsinformers.NewSharedInformerFactoryWithOptions(mc, 0, mcsinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = importSelector.String()
	}))
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
	sis, err := listImports(importSelector)
	if err != nil {
		return
	}
	eps, err := listSlices(sliceSelector)
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
