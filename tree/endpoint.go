// This file is the tree as the kubelet endpoint (package kubelet) sees
// it: *Controller implements kubelet.Tree from its caches.

package tree

import (
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"

	"kosmos.io/kosmos/tree/kubelet"
	"kosmos.io/kosmos/tree/translate"
)

var _ kubelet.Tree = (*Controller)(nil)

// Synced implements kubelet.Tree: the host's caches are filled.
func (c *Controller) Synced() bool { return c.hostReady.Load() }

// VirtualNode implements kubelet.Tree.
func (c *Controller) VirtualNode(namespace, name string) string {
	hp := c.hostPod(namespace, name)
	if hp == nil || c.clusterOfNode(hp.Spec.NodeName) == "" {
		return ""
	}
	return hp.Spec.NodeName
}

// Upstream implements kubelet.Tree: the member behind the pod's virtual
// node, when connected and holding this sync's copy of this host pod.
func (c *Controller) Upstream(namespace, name string) (kubelet.Upstream, error) {
	hp := c.hostPod(namespace, name)
	if hp == nil {
		return kubelet.Upstream{}, &kubelet.NoCopyError{Namespace: namespace, Pod: name}
	}
	m := c.member(c.clusterOfNode(hp.Spec.NodeName))
	if m == nil {
		return kubelet.Upstream{}, &kubelet.NotConnectedError{Node: hp.Spec.NodeName}
	}
	mp := m.pods.Pod(namespace, name)
	if mp == nil || !m.isOwn(mp.Labels) || mp.Annotations[translate.AnnotationHostPodUID] != string(hp.UID) {
		return kubelet.Upstream{}, &kubelet.NoCopyError{Namespace: namespace, Pod: name, Cluster: m.name}
	}
	rt, err := m.upgradeTransport()
	if err != nil {
		return kubelet.Upstream{}, err
	}
	return kubelet.Upstream{Cluster: m.name, Host: m.config.Host, Transport: rt}, nil
}

// SubjectAccessReviews implements kubelet.Tree.
func (c *Controller) SubjectAccessReviews() authorizationv1client.SubjectAccessReviewInterface {
	return c.hostCS.AuthorizationV1().SubjectAccessReviews()
}
