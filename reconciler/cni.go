package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// readCNI lists what the cluster's CNI records of its pod ranges (see
// desired/ipam.go): Calico's BlockAffinities and IPPools, Cilium's
// CiliumNodes, as unstructured objects. A kind the cluster does not have
// reads as not installed. Only the kinds the source want may use are
// read: NodeSpec reads none. It only reads.
func readCNI(ctx context.Context, c client.Client, want v1alpha1.IPAMSource) (desired.CNIObjects, error) {
	var o desired.CNIObjects
	list := func(apiVersion, kind string) ([]unstructured.Unstructured, bool, error) {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(apiVersion)
		l.SetKind(kind + "List")
		if err := c.List(ctx, l); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				return nil, false, nil
			}
			if apierrors.IsForbidden(err) {
				return nil, false, fmt.Errorf("list %s %s for network.ipam %s: forbidden (grant the reconciler's role read access, or set network.ipam to NodeSpec): %w", apiVersion, kind, want, err)
			}
			return nil, false, fmt.Errorf("list %s %s for network.ipam %s: %w", apiVersion, kind, want, err)
		}
		return l.Items, true, nil
	}
	auto := want == "" || want == v1alpha1.IPAMAuto
	if auto || want == v1alpha1.IPAMCalico {
		blocks, ok, err := list(desired.CalicoAPIVersion, desired.KindBlockAffinity)
		if err != nil {
			return o, err
		}
		o.Calico = ok
		for _, b := range blocks {
			node, _, _ := unstructured.NestedString(b.Object, "spec", "node")
			cidr, _, _ := unstructured.NestedString(b.Object, "spec", "cidr")
			state, _, _ := unstructured.NestedString(b.Object, "spec", "state")
			deleted, _, _ := unstructured.NestedString(b.Object, "spec", "deleted")
			o.Blocks = append(o.Blocks, desired.CalicoBlock{Node: node, CIDR: cidr, State: state, Deleted: deleted == "true"})
		}
		if ok && auto {
			pools, _, err := list(desired.CalicoAPIVersion, desired.KindIPPool)
			if err != nil {
				return o, err
			}
			for _, p := range pools {
				if p.GetLabels()[v1alpha1.LabelManagedBy] != v1alpha1.ManagedBy {
					o.CalicoPools++
				}
			}
		}
	}
	if (auto && len(o.Blocks) == 0 && o.CalicoPools == 0) || want == v1alpha1.IPAMCilium {
		nodes, ok, err := list(desired.CiliumAPIVersion, desired.KindCiliumNode)
		if err != nil {
			return o, err
		}
		o.Cilium = ok
		for _, n := range nodes {
			cidrs, _, _ := unstructured.NestedStringSlice(n.Object, "spec", "ipam", "podCIDRs")
			o.CiliumNodes = append(o.CiliumNodes, desired.CiliumNode{Name: n.GetName(), PodCIDRs: cidrs})
		}
	}
	return o, nil
}

// watchCNI fires when the pod ranges a cluster's CNI records change: a
// Calico BlockAffinity or a CiliumNode added, deleted or with a new spec
// (status and metadata updates wake nothing). A kind the cluster lacks is
// looked for again every 30 s (the CNI may be installed later; the
// controller's resync covers the rest). Clusters whose network.ipam is
// NodeSpec are not watched.
func watchCNI(ctx context.Context, cl Cluster, ipam v1alpha1.IPAMSource, fire func(), log *slog.Logger) {
	if ipam == v1alpha1.IPAMNodeSpec {
		return
	}
	cfg := rest.CopyConfig(cl.Config)
	cfg.Timeout = 0
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: cl.Client.Scheme()})
	if err != nil {
		log.Error("CNI watch", "cluster", cl.Name, "err", err)
		return
	}
	loop := func(apiVersion, kind string) {
		seen := map[string]string{}
		for ctx.Err() == nil {
			l := &unstructured.UnstructuredList{}
			l.SetAPIVersion(apiVersion)
			l.SetKind(kind + "List")
			w, err := wc.Watch(ctx, l)
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(30 * time.Second):
				}
				continue
			}
			for ev := range w.ResultChan() {
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				spec := fmt.Sprint(u.Object["spec"])
				switch old, had := seen[u.GetName()]; {
				case ev.Type == watch.Deleted:
					delete(seen, u.GetName())
					fire()
				case !had || old != spec:
					seen[u.GetName()] = spec
					fire()
				}
			}
			w.Stop()
		}
	}
	if ipam != v1alpha1.IPAMCilium {
		go loop(desired.CalicoAPIVersion, desired.KindBlockAffinity)
	}
	if ipam != v1alpha1.IPAMCalico {
		go loop(desired.CiliumAPIVersion, desired.KindCiliumNode)
	}
}
