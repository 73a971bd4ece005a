// Package translate is the tree's pure core: what the host and the
// members should hold, computed from plain objects, with no client, cache
// or clock behind it. Package tree reads the clusters, calls these
// functions and writes what they return; every function here leaves its
// arguments as they were.
//
// # Virtual nodes
//
// VirtualNodes computes the host's nodes for one member cluster from its
// Cluster object and what the member shows (Member: nodes and pods):
// Aggregate, one node with the member's room summed; OneToOne, one per
// selected member node. ReadyCondition and NodeReadyCondition give their
// Ready condition; NodeInfo, NodeUpdate and NodeStatusUpdate say what to
// write over the node the host holds (only the tree's own labels, taints
// and status fields), Unreachable how a silent member's node looks.
//
// # Pods
//
// MemberPod translates a host pod into its member copy (PodOptions: the
// virtual node, the member node in OneToOne, the host's API endpoint);
// DepsOf lists what it needs in its namespace; UpdatePod carries later
// host changes onto a running copy; HostStatus brings the copy's status
// back, pod IPs through the member's global CIDRs.
//
// ClassifyPod is the pod sync's decision for one pod name: given the host
// pod and the member pod as the caches show them (PodPair), which of the
// PodCase handlers runs (create, update, status up, delete the copy,
// release or fail the host pod, or nothing).
//
// # Volumes and status
//
// HostPV reflects a member volume into the host, bound to the host claim
// and pinned to the virtual nodes; SetClusterStatus computes the Cluster
// object's kstatus conditions from a pass's error.
//
// # Marks
//
// The labels and annotations of marks.go are the contract between the
// tree and what it writes: an object is the tree's only when it carries
// LabelManagedBy=ManagedBy (and, in a member, this sync's LabelOwner).
//
// # Usage
//
//	nodes := translate.VirtualNodes(cluster, translate.Member{Nodes: nodes, Pods: pods})
//	mp, err := translate.MemberPod(hostPod, translate.PodOptions{VirtualNode: hostPod.Spec.NodeName})
//	switch translate.ClassifyPod(translate.PodPair{Host: hp, Member: mp, HostCluster: "a", Cluster: "a", Owner: owner}) {
//	case translate.PodCreate: // …
//	}
package translate
