package distribution

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fwk "k8s.io/kube-scheduler/framework"

	"kosmos.io/kosmos/scheduler/policies"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// nodeCount is the replicas on one node, by controller.
type nodeCount struct {
	gen          int64 // the NodeInfo's; any change of the node or its pods bumps it
	cluster      string
	virtual      bool
	byController map[string]int // controller UID → pods
}

// clusterOr is the node's cluster: a virtual node's, else the host.
func (nc *nodeCount) clusterOr(host string) string {
	if nc.virtual {
		return nc.cluster
	}
	return host
}

// count is how many replicas of the pod's workload each cluster holds in
// the snapshot (assumed pods included). Per-node counts by controller are
// cached by the node's generation, so a cycle recounts only the nodes that
// changed since the last one (usually the one the last pod went to) instead
// of every pod on every node. Pods without a controller (key "") are
// counted by scanning, matched by the policy.
func (pl *Distribution) count(infos []fwk.NodeInfo, pod *corev1.Pod, key string, pol *policies.Policy, host string) (map[string]int, int) {
	placed := map[string]int{}
	count := 0
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.nodes == nil {
		pl.nodes = map[string]*nodeCount{}
	}
	seen := make(map[string]bool, len(infos))
	for _, ni := range infos {
		n := ni.Node()
		if n == nil {
			continue
		}
		seen[n.Name] = true
		var c string
		var k int
		if key == "" {
			c, k = policies.ClusterOf(n, host), pl.uncontrolled(ni, pod, pol)
		} else {
			nc := pl.nodeCount(ni)
			c, k = nc.clusterOr(host), nc.byController[key]
		}
		if k > 0 {
			placed[c] += k
			count += k
		}
	}
	pl.forgetRemoved(seen)
	return placed, count
}

// uncontrolled counts the pods on a node that have no controller and that
// the policy matches, the pod itself aside.
func (pl *Distribution) uncontrolled(ni fwk.NodeInfo, pod *corev1.Pod, pol *policies.Policy) int {
	k := 0
	for _, pi := range ni.GetPods() {
		p := pi.GetPod()
		if p.Namespace == pod.Namespace && p.UID != pod.UID && controllerUID(p) == "" && pl.pols.Matches(pol, p) {
			k++
		}
	}
	return k
}

// nodeCount is the node's cached count, recounted when the NodeInfo's
// generation moved. The caller holds pl.mu.
func (pl *Distribution) nodeCount(ni fwk.NodeInfo) *nodeCount {
	n := ni.Node()
	nc := pl.nodes[n.Name]
	if nc != nil && nc.gen == ni.GetGeneration() {
		return nc
	}
	nc = &nodeCount{gen: ni.GetGeneration(), byController: map[string]int{}}
	nc.cluster, nc.virtual = n.Labels[v1alpha1.LabelCluster]
	for _, pi := range ni.GetPods() {
		if k := controllerUID(pi.GetPod()); k != "" {
			nc.byController[k]++
		}
	}
	pl.nodes[n.Name] = nc
	return nc
}

// forgetRemoved drops the counts of nodes no longer in the snapshot. The
// caller holds pl.mu.
func (pl *Distribution) forgetRemoved(seen map[string]bool) {
	if len(pl.nodes) <= len(seen) {
		return
	}
	for name := range pl.nodes {
		if !seen[name] {
			delete(pl.nodes, name)
		}
	}
}

func controllerUID(p *corev1.Pod) string {
	if r := metav1.GetControllerOfNoCopy(p); r != nil {
		return string(r.UID)
	}
	return ""
}
