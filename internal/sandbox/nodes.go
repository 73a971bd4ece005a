package sandbox

import (
	"fmt"
	"math/big"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/internal/globalip"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// LabelSimulated marks the Node objects the sandbox creates for its
// simulated machines (its kubelet looks after their pods).
const LabelSimulated = "sandbox.kosmos.io/simulated"

// Machine sizes of a simulated node.
var nodeCapacity = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("8"),
	corev1.ResourceMemory: resource.MustParse("32Gi"),
	corev1.ResourcePods:   resource.MustParse("110"),
}

// NodesFor lists the simulated machines of every cluster of t, perNode of
// each: named <cluster>-n<j>, Ready, 8 CPUs / 32Gi / 110 pods, the
// cluster's region and zone, gateway candidates (kosmos.io/gateway=true),
// an underlay address 192.168.<i>.<10+j> (and fd00:<i>::<10+j> for
// dual-stack and IPv6 clusters) and the j-th /24 (/64) of the cluster's
// first pod CIDR of each family. It is pure: the same topology gives the
// same nodes.
func NodesFor(t *v1alpha1.KosmosTopology, perCluster int) (map[string][]corev1.Node, error) {
	out := map[string][]corev1.Node{}
	for i, c := range t.Spec.Clusters {
		var v4, v6 *netip.Prefix
		for _, s := range c.Network.PodCIDRs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: pod CIDR %q: %w", c.Name, s, err)
			}
			p = p.Masked()
			if p.Addr().Is4() && v4 == nil {
				v4 = &p
			} else if p.Addr().Is6() && v6 == nil {
				v6 = &p
			}
		}
		for j := 1; j <= perCluster; j++ {
			n := corev1.Node{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-n%d", c.Name, j), Labels: map[string]string{
					LabelSimulated: "true", "kosmos.io/gateway": "true", corev1.LabelOSStable: "linux",
				}},
				Status: corev1.NodeStatus{Capacity: nodeCapacity.DeepCopy(), Allocatable: nodeCapacity.DeepCopy(),
					Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "simulated by kosmos up"}}},
			}
			n.Labels[corev1.LabelHostname] = n.Name
			if c.Region != "" {
				n.Labels[corev1.LabelTopologyRegion] = c.Region
			}
			if c.Zone != "" {
				n.Labels[corev1.LabelTopologyZone] = c.Zone
			}
			if v4 != nil {
				n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("192.168.%d.%d", i+1, 10+j)})
				n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, subnet(*v4, 24, j).String())
			}
			if v6 != nil {
				n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("fd00:%d::%d", i+1, 10+j)})
				n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, subnet(*v6, 64, j).String())
			}
			if len(n.Spec.PodCIDRs) > 0 {
				n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
			}
			out[c.Name] = append(out[c.Name], n)
		}
	}
	return out, nil
}

// subnet is the k-th subnet of size bits inside p (p itself when p is
// already that small): p's network bits, then k, then zeros.
func subnet(p netip.Prefix, bits, k int) netip.Prefix {
	if p.Bits() >= bits {
		return p
	}
	total := 128
	if p.Addr().Is4() {
		total = 32
	}
	v := new(big.Int).Lsh(big.NewInt(int64(k)), uint(total-bits))
	buf := make([]byte, total/8)
	v.FillBytes(buf)
	lo, _ := netip.AddrFromSlice(buf)
	return netip.PrefixFrom(globalip.Splice(p.Addr(), lo, p.Bits()), bits)
}
