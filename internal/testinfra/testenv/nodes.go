package testenv

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CreateNode creates a Node object standing for a machine: Ready, with the
// given InternalIPs and pod CIDRs (the first is also spec.podCIDR).
func CreateNode(ctx context.Context, c client.Client, name string, ips, podCIDRs []string, labels map[string]string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{PodCIDRs: podCIDRs}}
	if len(podCIDRs) > 0 {
		n.Spec.PodCIDR = podCIDRs[0]
	}
	if err := c.Create(ctx, n); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	now := metav1.Now()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: now, LastTransitionTime: now}}
	if err := c.Status().Update(ctx, n); err != nil {
		return fmt.Errorf("node %s status: %w", name, err)
	}
	return nil
}

// ExampleNodes creates two nodes in each cluster of the example topology
// (host, member-a, member-b, member-c; member-c dual-stack), all labelled as
// gateway candidates.
func ExampleNodes(ctx context.Context, clients map[string]client.Client) error {
	pods := map[string]string{"host": "10.10", "member-a": "10.244", "member-b": "10.244", "member-c": "10.30"}
	for i, name := range []string{"host", "member-a", "member-b", "member-c"} {
		c, ok := clients[name]
		if !ok {
			return fmt.Errorf("no client for cluster %s", name)
		}
		for j := 1; j <= 2; j++ {
			ips := []string{fmt.Sprintf("192.168.%d.%d", i+1, 10+j)}
			cidrs := []string{fmt.Sprintf("%s.%d.0/24", pods[name], j)}
			if name == "member-c" {
				ips = append(ips, fmt.Sprintf("fd00:%d::%d", i+1, 10+j))
				cidrs = append(cidrs, fmt.Sprintf("fd00:30:0:%d::/64", j))
			}
			if err := CreateNode(ctx, c, fmt.Sprintf("%s-n%d", name, j), ips, cidrs, map[string]string{"kosmos.io/gateway": "true"}); err != nil {
				return err
			}
		}
	}
	return nil
}
