package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// The last good network facts of every cluster, persisted in the host, so
// that a cluster that does not answer is planned from what it last was (its
// peers keep their routes to it) even by a fresh process: a restarted
// reconciler or `kosmos apply --partial`. Kept in the ConfigMap
// kosmos-system/kosmos-facts-<topology>, one key per cluster; node labels
// are kept only where a gateway selector reads them, so the record stays
// small (about 150 bytes a node). Multi-cluster service facts are not kept:
// they are recovered from the imports the other clusters hold.

// factsPrefix + the topology's name is the ConfigMap of the last good facts.
const factsPrefix = "kosmos-facts-"

// persistedFacts is the record: the network facts of every cluster observed
// at least once, trimmed by trimFacts.
type persistedFacts map[string]netplan.ClusterFacts

// trimFacts keeps of each node what the planner reads, and of its labels
// only those some gateway selector of the topology names. It is pure.
func trimFacts(t *v1alpha1.KosmosTopology, f netplan.ClusterFacts) netplan.ClusterFacts {
	keys := map[string]bool{}
	for _, c := range t.Spec.Clusters {
		for k := range c.Network.Gateway.NodeSelector {
			keys[k] = true
		}
	}
	out := netplan.ClusterFacts{Gateway: f.Gateway, IPAM: f.IPAM}
	for _, n := range f.Nodes {
		m := netplan.Node{Name: n.Name, InternalIPs: n.InternalIPs, PodCIDRs: n.PodCIDRs, Ready: n.Ready, ReadySince: n.ReadySince, LegacyAgent: n.LegacyAgent, WireGuardKey: n.WireGuardKey, WireGuardNextKey: n.WireGuardNextKey, Gateways: n.Gateways, GatewaysSince: n.GatewaysSince, GatewaysPlanned: n.GatewaysPlanned}
		for k, v := range n.Labels {
			if keys[k] {
				if m.Labels == nil {
					m.Labels = map[string]string{}
				}
				m.Labels[k] = v
			}
		}
		out.Nodes = append(out.Nodes, m)
	}
	return out
}

// encodeFacts renders the record as ConfigMap data. It is pure.
func encodeFacts(f persistedFacts) (map[string]string, error) {
	out := make(map[string]string, len(f))
	for _, name := range slices.Sorted(maps.Keys(f)) {
		b, err := json.Marshal(f[name])
		if err != nil {
			return nil, err
		}
		out[name] = string(b)
	}
	return out, nil
}

// factsStore reads and writes the record in the host.
type factsStore struct {
	c        client.Client
	topology string
}

func (s factsStore) key() client.ObjectKey {
	return client.ObjectKey{Namespace: v1alpha1.SystemNamespace, Name: factsPrefix + s.topology}
}

// load reads the record (empty when there is none) and the data as stored.
func (s factsStore) load(ctx context.Context) (persistedFacts, map[string]string, error) {
	var cm corev1.ConfigMap
	if err := s.c.Get(ctx, s.key(), &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return persistedFacts{}, nil, nil
		}
		return nil, nil, fmt.Errorf("read the last good facts %s: %w", s.key(), err)
	}
	out := persistedFacts{}
	for name, data := range cm.Data {
		var f netplan.ClusterFacts
		if err := json.Unmarshal([]byte(data), &f); err != nil {
			return nil, nil, fmt.Errorf("the last good facts of cluster %s in %s: %w", name, s.key(), err)
		}
		out[name] = f
	}
	return out, cm.Data, nil
}

// save writes the record when it differs from what is stored (nothing
// written otherwise).
func (s factsStore) save(ctx context.Context, f persistedFacts, stored map[string]string) error {
	data, err := encodeFacts(f)
	if err != nil {
		return err
	}
	if maps.Equal(data, stored) {
		return nil
	}
	return inventory.WriteRecord(ctx, s.c, s.key(), s.topology, data)
}

// delete removes the record (Kosmos taken out).
func (s factsStore) delete(ctx context.Context) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.key().Namespace, Name: s.key().Name}}
	return client.IgnoreNotFound(s.c.Delete(ctx, cm))
}
