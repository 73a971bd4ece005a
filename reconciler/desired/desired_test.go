package desired_test

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestComputeExample plans the example topology over captured facts: every
// object carries both ownership labels and the gateway in force is kept.
// (The whole plan's golden file is reconciler/plan's.)
func TestComputeExample(t *testing.T) {
	topo, err := schema.LoadFile(filepath.Join("..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "plan", "testdata", "example-facts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	facts, err := plan.LoadFacts(data)
	if err != nil {
		t.Fatal(err)
	}
	st := desired.Compute(topo, facts.Network())
	if len(st.Problems) > 0 {
		t.Fatalf("problems: %v", st.Problems)
	}
	for _, co := range st.Clusters {
		for _, o := range co.Objects {
			if l := o.GetLabels(); l[v1alpha1.LabelManagedBy] != "kosmos" || l[v1alpha1.LabelTopology] != "example" {
				t.Errorf("%s/%s in %s lacks the ownership labels: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), co.Cluster, l)
			}
		}
	}
	// The gateway in force (member-b-n2, not the first by name) is kept.
	var gw []client.Object
	for _, o := range st.Clusters[2].Objects {
		if o.GetLabels()[v1alpha1.LabelRole] == v1alpha1.RoleGateway {
			gw = append(gw, o)
		}
	}
	if len(gw) != 1 || gw[0].GetName() != "member-b-n2" {
		t.Errorf("gateway in force not kept: %v", gw)
	}
}

// TestFactsSkipVirtualNodes: the tree's virtual nodes are member clusters,
// not machines: no NodeConfig is planned for them.
func TestFactsSkipVirtualNodes(t *testing.T) {
	nodes := []corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "host-n1"}, Spec: corev1.NodeSpec{PodCIDR: "10.10.1.0/24"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-member-a", Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByTree}}},
	}
	f := desired.FactsOf(nodes, nil)
	if len(f.Nodes) != 1 || f.Nodes[0].Name != "host-n1" {
		t.Errorf("facts: %+v", f.Nodes)
	}
}

// TestClusterCarriesOnlyTheTreeIdentity: the Cluster object the tree reads
// names the tree's kubeconfig Secret (treeSecretRef), never the
// reconciler's (secretRef); a member without treeSecretRef falls back to
// secretRef, and SharesTreeIdentity says so.
func TestClusterCarriesOnlyTheTreeIdentity(t *testing.T) {
	topo := &v1alpha1.KosmosTopology{ObjectMeta: metav1.ObjectMeta{Name: "t"}, Spec: v1alpha1.TopologySpec{Clusters: []v1alpha1.ClusterSpec{
		{Name: "host", Role: v1alpha1.RoleHost, Kubeconfig: v1alpha1.KubeconfigRef{Context: "host"}},
		{Name: "split", Role: v1alpha1.RoleMember, Kubeconfig: v1alpha1.KubeconfigRef{
			SecretRef:     &v1alpha1.SecretKeyRef{Name: "kc-split-reconciler"},
			TreeSecretRef: &v1alpha1.SecretKeyRef{Name: "kc-split-tree", Key: "config"},
		}},
		{Name: "shared", Role: v1alpha1.RoleMember, Kubeconfig: v1alpha1.KubeconfigRef{SecretRef: &v1alpha1.SecretKeyRef{Name: "kc-shared"}}},
	}}}
	v1alpha1.SetDefaults(topo)
	want := map[string]v1alpha1.SecretKeyRef{
		"split":  {Name: "kc-split-tree", Namespace: v1alpha1.SystemNamespace, Key: "config"},
		"shared": {Name: "kc-shared", Namespace: v1alpha1.SystemNamespace, Key: v1alpha1.DefaultSecretKey},
	}
	st := desired.Compute(topo, netplan.Facts{})
	got := map[string]v1alpha1.SecretKeyRef{}
	for _, co := range st.Clusters {
		for _, o := range co.Objects {
			if cl, ok := o.(*v1alpha1.Cluster); ok {
				got[cl.Name] = cl.Spec.Kubeconfig
			}
		}
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("Cluster %s names kubeconfig %+v, want %+v", name, got[name], w)
		}
	}
	if topo.Spec.Cluster("split").SharesTreeIdentity() || !topo.Spec.Cluster("shared").SharesTreeIdentity() {
		t.Errorf("SharesTreeIdentity: split %v (want false), shared %v (want true)",
			topo.Spec.Cluster("split").SharesTreeIdentity(), topo.Spec.Cluster("shared").SharesTreeIdentity())
	}
}

// TestLegacyAgent: an agent gets compact NodeConfigs only once it has
// derived from shared objects (contract Shared and the ClusterPeers it
// used); one that only says Shared (it applied a complete NodeConfig, or
// has not read the ClusterPeers yet) keeps getting complete ones, so no
// route is withdrawn while its cache fills.
func TestLegacyAgent(t *testing.T) {
	applied := []metav1.Condition{{Type: "Applied", Status: metav1.ConditionTrue}}
	for _, tc := range []struct {
		name   string
		status v1alpha1.NodeConfigStatus
		legacy bool
	}{
		{"no agent yet", v1alpha1.NodeConfigStatus{}, false},
		{"earlier release", v1alpha1.NodeConfigStatus{Conditions: applied}, true},
		{"current, nothing derived yet", v1alpha1.NodeConfigStatus{Conditions: applied, Contract: v1alpha1.ContractShared}, true},
		{"current, derived", v1alpha1.NodeConfigStatus{Conditions: applied, Contract: v1alpha1.ContractShared,
			Peers: []v1alpha1.AppliedPeers{{Name: "east.0-of-1", Generation: 1}}}, false},
	} {
		if got := desired.LegacyAgent(&v1alpha1.NodeConfig{Status: tc.status}); got != tc.legacy {
			t.Errorf("%s: LegacyAgent = %v, want %v", tc.name, got, tc.legacy)
		}
	}
}
