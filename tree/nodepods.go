package tree

import (
	corev1 "k8s.io/api/core/v1"
)

// onVirtualNode queues the host pods already bound to a virtual node when
// the node appears in the tree's cache. A pod bound before that (created
// with its nodeName, or by a scheduler that saw the node before the
// tree's own watch did) found no member behind its node when its event
// came, and nothing else would look at it again until it changed.
func (c *Controller) onVirtualNode(obj any) {
	n, ok := unwrap(obj).(*corev1.Node)
	if !ok {
		return
	}
	m := c.member(n.Labels[LabelCluster])
	if m == nil {
		return // not connected yet: its sweep on connecting queues them
	}
	objs, _ := c.hostPods.ByIndex(indexByNode, n.Name)
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			m.addDown(p.Namespace + "/" + p.Name)
		}
	}
}
