package tree

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// FieldManager is the tree's server-side-apply identity; LabelManagedBy
// with ManagedBy marks the virtual nodes it owns (the only nodes it ever
// deletes).
const (
	FieldManager   = "kosmos-tree"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kosmos-tree"
)

// Controller keeps the host's virtual nodes matching the Cluster objects
// the reconciler writes and what each member's API server shows.
type Controller struct {
	// Host is a client of the host cluster.
	Host client.Client
	// Namespace of kubeconfig Secrets that name none.
	Namespace string
	// Interval between passes (default 10s).
	Interval time.Duration
	Log      *slog.Logger
	// OnPass, when set, receives every pass's error (tests, readiness).
	OnPass func(error)

	mu      sync.Mutex
	members map[string]memberClient // by cluster name
}

// Run passes until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if c.Interval <= 0 {
		c.Interval = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	for {
		err := c.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			c.Log.Error("tree pass", "err", err)
		}
		if c.OnPass != nil {
			c.OnPass(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Interval):
		}
	}
}

// Pass brings every virtual node up to date once: one member failing does
// not stop the others (its nodes are left as they are).
func (c *Controller) Pass(ctx context.Context) error {
	var clusters v1alpha1.ClusterList
	if err := c.Host.List(ctx, &clusters); err != nil {
		return fmt.Errorf("list Cluster objects: %w", err)
	}
	want := map[string]bool{}
	keep := map[string]bool{} // clusters whose nodes stay as they are
	var errs []error
	for i := range clusters.Items {
		cl := &clusters.Items[i]
		if cl.Spec.Tree.Enabled != nil && !*cl.Spec.Tree.Enabled {
			continue
		}
		m, err := c.observe(ctx, cl)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", cl.Name, err))
			keep[cl.Name] = true
			continue
		}
		for _, n := range VirtualNodes(cl, m) {
			want[n.Name] = true
			if err := c.apply(ctx, n); err != nil {
				errs = append(errs, fmt.Errorf("cluster %s: node %s: %w", cl.Name, n.Name, err))
			}
		}
	}
	var nodes corev1.NodeList
	if err := c.Host.List(ctx, &nodes, client.MatchingLabels{LabelManagedBy: ManagedBy}); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if want[n.Name] || keep[n.Labels[LabelCluster]] {
			continue
		}
		if err := c.Host.Delete(ctx, n); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", n.Name, err))
		} else {
			c.Log.Info("virtual node removed", "node", n.Name)
		}
	}
	return errors.Join(errs...)
}

// observe reads the member's nodes and pods through its kubeconfig Secret.
// A member's client is kept while its Secret is unchanged.
func (c *Controller) observe(ctx context.Context, cl *v1alpha1.Cluster) (Member, error) {
	cfg, version, err := kubeconfig.FromSecret(ctx, c.Host, cl.Spec.Kubeconfig, c.Namespace)
	if err != nil {
		return Member{}, err
	}
	c.mu.Lock()
	mc, ok := c.members[cl.Name]
	c.mu.Unlock()
	if !ok || mc.version != version {
		cfg.Timeout = 30 * time.Second
		cli, err := client.New(cfg, client.Options{Scheme: c.Host.Scheme()})
		if err != nil {
			return Member{}, err
		}
		mc = memberClient{version: version, client: cli}
		c.mu.Lock()
		if c.members == nil {
			c.members = map[string]memberClient{}
		}
		c.members[cl.Name] = mc
		c.mu.Unlock()
	}
	var nodes corev1.NodeList
	if err := mc.client.List(ctx, &nodes); err != nil {
		return Member{}, fmt.Errorf("list nodes: %w", err)
	}
	var pods corev1.PodList
	if err := mc.client.List(ctx, &pods); err != nil {
		return Member{}, fmt.Errorf("list pods: %w", err)
	}
	return Member{Nodes: nodes.Items, Pods: pods.Items}, nil
}

type memberClient struct {
	version string // of the kubeconfig Secret
	client  client.Client
}

// apply writes the node (labels, annotations, taints) and its status
// (capacity, allocatable, Ready) when they differ from what the host holds.
func (c *Controller) apply(ctx context.Context, n *corev1.Node) error {
	n.Labels[LabelManagedBy] = ManagedBy
	n.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "MemberReachable",
		Message: "the member cluster's API server answers", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}
	var have corev1.Node
	err := c.Host.Get(ctx, client.ObjectKeyFromObject(n), &have)
	switch {
	case client.IgnoreNotFound(err) != nil:
		return err
	case err != nil: // not found
		status := n.Status
		if err := c.Host.Create(ctx, n); err != nil {
			return err
		}
		n.Status = status
		c.Log.Info("virtual node created", "node", n.Name)
		return c.Host.Status().Update(ctx, n)
	}
	if !subset(n.Labels, have.Labels) || !subset(n.Annotations, have.Annotations) || !equality.Semantic.DeepEqual(n.Spec.Taints, ownTaints(have.Spec.Taints)) {
		have.Labels, have.Annotations = merge(have.Labels, n.Labels), merge(have.Annotations, n.Annotations)
		have.Spec.Taints = n.Spec.Taints
		if err := c.Host.Update(ctx, &have); err != nil {
			return err
		}
	}
	if !equality.Semantic.DeepEqual(have.Status.Allocatable, n.Status.Allocatable) || !ready(&have) {
		have.Status.Capacity, have.Status.Allocatable = n.Status.Capacity, n.Status.Allocatable
		have.Status.Conditions = n.Status.Conditions
		return c.Host.Status().Update(ctx, &have)
	}
	return nil
}

// ownTaints is have's taints without the ones the host adds itself (the
// not-ready and unreachable taints of the node lifecycle).
func ownTaints(have []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range have {
		if t.Key != corev1.TaintNodeNotReady && t.Key != corev1.TaintNodeUnreachable {
			out = append(out, t)
		}
	}
	return out
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func merge(into, from map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	for k, v := range from {
		into[k] = v
	}
	return into
}
