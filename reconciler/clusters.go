package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/schema/scheme"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Scheme knows every type the reconciler reads or writes (schema/scheme's).
func Scheme() (*runtime.Scheme, error) { return scheme.New() }

// Cluster is one cluster of the topology with its client, or the error that
// kept it from getting one.
type Cluster struct {
	Name   string
	Config *rest.Config
	Client client.Client
	Err    error
	// Credentials identifies the credentials Config holds without holding
	// them: the kubeconfig Secret's resourceVersion for ConnectSecrets,
	// empty for the host's own and for local contexts. The controller
	// connects again when it changes (a rotated token).
	Credentials string
}

// ConnectContexts reaches every cluster of the topology through the context
// its kubeconfig.context names in the local kubeconfig (path, or the usual
// KUBECONFIG rules when empty). One cluster that cannot be reached does not
// stop the others; its Err says why (without naming the cluster: whoever
// prints it does), never with a credential.
func ConnectContexts(t *v1alpha1.KosmosTopology, kubeconfig string) ([]Cluster, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	var out []Cluster
	for _, c := range t.Spec.Clusters {
		cl := Cluster{Name: c.Name}
		if c.Kubeconfig.Context == "" {
			cl.Err = errors.New("no kubeconfig.context in the topology; the CLI reaches clusters through local contexts")
			out = append(out, cl)
			continue
		}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Kubeconfig.Context}).ClientConfig()
		if err != nil {
			cl.Err = fmt.Errorf("context %q: %w", c.Kubeconfig.Context, err)
			out = append(out, cl)
			continue
		}
		out = append(out, newCluster(c.Name, cfg, scheme))
	}
	return out, nil
}

// RequestTimeout bounds every API request of a pass, so that a cluster whose
// API server hangs fails fast instead of holding the pass (watches are not
// bounded).
const RequestTimeout = 30 * time.Second

// secretReadTimeout bounds each read of a kubeconfig Secret.
const secretReadTimeout = 10 * time.Second

func newCluster(name string, cfg *rest.Config, scheme *runtime.Scheme) Cluster {
	if cfg.QPS == 0 { // client-go's default (5/s) throttles a pass over many objects
		cfg.QPS, cfg.Burst = 50, 100
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = RequestTimeout
	}
	cl := Cluster{Name: name, Config: cfg}
	var err error
	if cl.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		cl.Err = err
	}
	return cl
}

// ConnectSecrets reaches every cluster of the topology the way the
// in-cluster controller does: through the kubeconfig its kubeconfig.secretRef
// names, a Secret in the host cluster (namespace defaults to namespace). The
// host cluster without a secretRef is reached with host itself (the
// controller's own, in-cluster, credentials). Kubeconfigs that would run a
// program (exec plugins, auth providers) are refused. One cluster that
// cannot be reached does not stop the others; no error shows a credential.
// Each cluster's Credentials is its Secret's resourceVersion, so that a
// controller sees a rotated token. The Secrets are read in parallel, each
// for secretReadTimeout at most: a host that hangs holds a connect (and the
// controller's check for rotated Secrets) that long, whatever the fleet.
func ConnectSecrets(ctx context.Context, host *rest.Config, t *v1alpha1.KosmosTopology, namespace string, opts kubeconfig.Options) ([]Cluster, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	hcfg := rest.CopyConfig(host)
	if hcfg.Timeout == 0 {
		hcfg.Timeout = secretReadTimeout
	}
	hc, err := client.New(hcfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	out := make([]Cluster, len(t.Spec.Clusters))
	var wg sync.WaitGroup
	for i, c := range t.Spec.Clusters {
		wg.Go(func() { out[i] = connectSecret(ctx, hc, host, &c, namespace, opts, scheme) })
	}
	wg.Wait()
	return out, nil
}

// connectSecret reaches one cluster as ConnectSecrets says.
func connectSecret(ctx context.Context, hc client.Client, host *rest.Config, c *v1alpha1.ClusterSpec, namespace string, opts kubeconfig.Options, scheme *runtime.Scheme) Cluster {
	ref := c.Kubeconfig.SecretRef
	if ref == nil {
		if c.Role == v1alpha1.RoleHost {
			return newCluster(c.Name, rest.CopyConfig(host), scheme)
		}
		return Cluster{Name: c.Name, Err: errors.New("no kubeconfig.secretRef in the topology; the controller reaches member clusters through kubeconfig Secrets")}
	}
	cfg, version, err := kubeconfig.FromSecret(ctx, hc, *ref, namespace, opts)
	if err != nil {
		return Cluster{Name: c.Name, Err: err}
	}
	cl := newCluster(c.Name, cfg, scheme)
	cl.Credentials = version
	return cl
}
