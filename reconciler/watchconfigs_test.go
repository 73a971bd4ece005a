package reconciler

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestAgentViewWakes(t *testing.T) {
	applied := []metav1.Condition{{Type: "Applied", Status: metav1.ConditionTrue}}
	nc := func(contract string, peers int, conds []metav1.Condition, changes ...string) *v1alpha1.NodeConfig {
		n := &v1alpha1.NodeConfig{Status: v1alpha1.NodeConfigStatus{Contract: contract, Conditions: conds, LastChanges: changes}}
		n.Name = "n1"
		for i := 0; i < peers; i++ {
			n.Status.Peers = append(n.Status.Peers, v1alpha1.AppliedPeers{Name: "b.0-of-1", Generation: int64(i + 1)})
		}
		return n
	}
	shared, legacy, fresh := nc(v1alpha1.ContractShared, 1, applied), nc("", 0, applied), nc("", 0, nil)
	for _, c := range []struct {
		name   string
		events []watch.EventType
		objs   []*v1alpha1.NodeConfig
		wakes  []bool
	}{
		{"first sight wakes nothing; a change seen on a restarted watch wakes", []watch.EventType{watch.Added, watch.Added}, []*v1alpha1.NodeConfig{legacy, shared}, []bool{false, true}},
		{"a rollback to the earlier agent wakes", []watch.EventType{watch.Added, watch.Modified}, []*v1alpha1.NodeConfig{shared, legacy}, []bool{false, true}},
		{"an upgraded agent's first shared report wakes", []watch.EventType{watch.Added, watch.Modified}, []*v1alpha1.NodeConfig{legacy, shared}, []bool{false, true}},
		{"a new node's first report wakes nothing", []watch.EventType{watch.Added, watch.Modified}, []*v1alpha1.NodeConfig{fresh, shared}, []bool{false, false}},
		{"other status writes wake nothing", []watch.EventType{watch.Added, watch.Modified, watch.Modified},
			[]*v1alpha1.NodeConfig{shared, nc(v1alpha1.ContractShared, 2, applied, "route added"), nc(v1alpha1.ContractShared, 1, nil)}, []bool{false, false, false}},
		{"deleted and recreated is a first sight", []watch.EventType{watch.Added, watch.Deleted, watch.Added}, []*v1alpha1.NodeConfig{shared, shared, legacy}, []bool{false, false, false}},
		{"an agent that moved to another gateway candidate wakes", []watch.EventType{watch.Added, watch.Modified, watch.Modified},
			[]*v1alpha1.NodeConfig{withGateway(shared, "g1"), withGateway(shared, "g2"), withGateway(nc(v1alpha1.ContractShared, 2, applied), "g2")}, []bool{false, true, false}},
		{"an agent that read a new plan and stays where its probes keep it wakes", []watch.EventType{watch.Added, watch.Modified},
			[]*v1alpha1.NodeConfig{withPlanned(shared, "g1", "g1"), withPlanned(shared, "g1", "g2")}, []bool{false, true}},
		{"a published or rotated WireGuard key wakes", []watch.EventType{watch.Added, watch.Modified, watch.Modified, watch.Modified},
			[]*v1alpha1.NodeConfig{shared, withKey(shared, "k1"), withKey(shared, "k1"), withKey(shared, "k2")}, []bool{false, true, false, true}},
		{"a next key (a rotation begun) and its promotion wake", []watch.EventType{watch.Added, watch.Modified, watch.Modified, watch.Modified},
			[]*v1alpha1.NodeConfig{withKey(shared, "k1"), withNextKey(shared, "k1", "k2"), withNextKey(shared, "k1", "k2"), withKey(shared, "k2")}, []bool{false, true, false, true}},
		{"bookmarks and errors wake nothing", []watch.EventType{watch.Added, watch.Bookmark, watch.Error}, []*v1alpha1.NodeConfig{shared, legacy, legacy}, []bool{false, false, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := agentView{}
			for i, typ := range c.events {
				if got := v.observe(typ, c.objs[i]); got != c.wakes[i] {
					t.Errorf("event %d (%s): wakes %v, want %v", i, typ, got, c.wakes[i])
				}
			}
		})
	}
}

func withGateway(nc *v1alpha1.NodeConfig, active string) *v1alpha1.NodeConfig {
	out := nc.DeepCopy()
	out.Status.Gateways = []v1alpha1.GatewayChoice{{Cluster: "gw", Active: active}}
	return out
}

func withNextKey(nc *v1alpha1.NodeConfig, key, next string) *v1alpha1.NodeConfig {
	out := withKey(nc, key)
	out.Status.WireGuard.NextPublicKey = next
	return out
}

func withKey(nc *v1alpha1.NodeConfig, key string) *v1alpha1.NodeConfig {
	out := nc.DeepCopy()
	out.Status.WireGuard = &v1alpha1.WireGuardStatus{PublicKey: key}
	return out
}

func withPlanned(nc *v1alpha1.NodeConfig, active, planned string) *v1alpha1.NodeConfig {
	out := nc.DeepCopy()
	out.Status.Gateways = []v1alpha1.GatewayChoice{{Cluster: "gw", Active: active, Planned: planned}}
	return out
}
