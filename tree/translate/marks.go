package translate

import "kosmos.io/kosmos/schema/v1alpha1"

// LabelManagedBy with ManagedBy marks what the tree owns: virtual nodes
// and reflected volumes in the host, pods and dependency copies in
// members. Only such objects are ever updated or deleted.
const (
	LabelManagedBy = v1alpha1.LabelManagedBy
	ManagedBy      = v1alpha1.ManagedByTree
)

// Marks on what the tree writes into a member. A member object is the
// tree's only when it carries LabelManagedBy=ManagedBy; a member pod is the
// copy of exactly one host pod, named by AnnotationHostPodUID.
const (
	// AnnotationHostPodUID is the UID of the host pod a member pod copies.
	AnnotationHostPodUID = "kosmos.io/host-pod-uid"
	// AnnotationVirtualNode is the host's virtual node the pod is bound to.
	AnnotationVirtualNode = "kosmos.io/virtual-node"
	// AnnotationMemberScheduling, on a host pod, holds JSON MemberScheduling:
	// the constraints that apply inside the member (they replace the
	// host-side ones, which name host nodes and mean nothing there).
	AnnotationMemberScheduling = "kosmos.io/member-scheduling"
	// AnnotationHostSpec is a hash of the host pod's updatable fields as
	// last carried down: the member pod is updated only when the host's
	// change, never to undo what the member's own admission changed.
	AnnotationHostSpec = "kosmos.io/host-spec"
	// LabelOwner names, on everything a member sync creates, which host and
	// Cluster object it belongs to (OwnerID): two Cluster objects or two
	// hosts that reach one member never take each other's copies for
	// orphans.
	LabelOwner = "kosmos.io/owner"
	// OriginHost is the value of LabelOrigin on member pods copied from the
	// host.
	OriginHost = "host"
	// TokenSecretPrefix starts the names the tree reserves in members: the
	// Secrets that carry a host pod's token, the host's CA and the
	// namespace (TokenSecretName), and the accounts copies run under
	// (MemberAccountName). Host Secrets and ConfigMaps of such names are
	// never copied (Reserved).
	TokenSecretPrefix = "kosmos-sa-"
)

// Labels and taint of virtual nodes; the ones the scheduler reads are
// defined in v1alpha1.
const (
	LabelCluster = v1alpha1.LabelCluster
	TaintLeaf    = v1alpha1.TaintLeaf
	// LabelMemberNode names the member node a OneToOne virtual node mirrors.
	LabelMemberNode = "kosmos.io/member-node"
	// LabelNodeGroup names the node group (tree.nodeGroups) a virtual node
	// stands for.
	LabelNodeGroup = "kosmos.io/node-group"
	// LabelOrigin marks member pods Kosmos created for host pods; their
	// requests are not subtracted (the host already counts them).
	LabelOrigin = "kosmos.io/origin"
)

// AnnotationOwnLabels lists the label keys the tree set on a virtual node,
// so that it removes the ones it no longer wants and no other.
const AnnotationOwnLabels = "kosmos.io/own-labels"
