// Package tree makes member clusters appear as nodes of the host cluster
// (ClusterTree): pods bound to those nodes run in the members, with what
// they need, and their status comes back.
//
// # Virtual nodes
//
// For every Cluster object the reconciler writes in the host (tree
// enabled), the Controller keeps one virtual node (Aggregate: the member's
// room summed over its Ready, schedulable, selected nodes, net of the pods
// Kosmos did not create) or one per member node (OneToOne, named
// kosmos-<cluster>.<node>: a cluster name is a DNS-1123 label, so the
// first dot ends it and names never collide). Each carries
// the kosmos.io/cluster, region and zone labels, the kosmos.io/leaf taint
// and the free-resource summary the scheduler's fragmentation check reads
// (translate.VirtualNodes). A node renews its Lease in kube-node-lease while
// the member's API server answers; once it has been silent for Grace, the
// node's Ready condition turns Unknown and the host's node lifecycle takes
// over. The Cluster object reports Ready, Reconciling or Stalled. In
// Aggregate mode each of the cluster's tree.nodeGroups is a virtual node
// of its own (kosmos-<cluster>.<group>.group) over the member nodes its
// selector picks; copies of its pods run on those nodes only, copies of
// the default node's pods off them (translate/nodegroup.go).
//
// # Host services and DaemonSets
//
// Copies resolve names at the host's cluster DNS with the host's search
// path and get the host's service variables (translate/hostservices.go).
// A host service range that overlaps the member's, unmapped by the host's
// GlobalCIDRs, keeps copies on the member's (translate/hostreach.go).
// DaemonSet pods bound to virtual nodes are never copied; a DaemonSet
// annotated kosmos.io/member-daemonset, in a namespace labelled
// kosmos.io/member-daemonsets=enabled and whose template the host's
// admission passes as a dry run (daemonsetadmit.go), runs as a DaemonSet
// of each member, its counts summed back (daemonsets.go,
// translate/daemonset.go); the member's DaemonSet informer starts apart,
// once the member allows it (memberdaemonsets.go).
//
// # Leaving
//
// A cluster that leaves the tree (its Cluster object deleted, held by the
// finalizer kosmos.io/tree-drain, or its tree disabled) is drained before
// its virtual nodes go: cordoned, its pods evicted through the host
// (disruption budgets apply), their copies ended in the member first
// (leave.go). No pod runs twice.
//
// # Pods down, status up
//
// Each member has a memberSync: informers on the member (all nodes and
// pods, for the virtual nodes; the tree's own copies, by label), a work
// queue of host pod keys and Workers goroutines. The queue has two lanes
// served in turn (podqueue.go): keys queued by a change in the host (down)
// and by a change of a member copy (up), so that neither direction waits
// behind a burst of the other. Host informers (pods bound
// to some node, virtual nodes, ConfigMaps, Secrets, claims) route every
// change to the member behind the pod's node. For each key,
// translate.ClassifyPod compares the host pod with its member copy and
// names one case; one small handler (podsync.go) does it: create the copy
// after its dependencies, carry updatable fields down, write the status
// up (translate.HostStatus: only pod IPs the member's pod CIDRs hold,
// through its GlobalCIDRs; others are left out with a warning),
// delete the copy with the host's grace period and then release the host
// pod as a kubelet would, delete an orphan, or fail a host pod whose copy
// vanished. translate.MemberPod translates the pod: scheduling
// constraints of the host dropped for those of the
// kosmos.io/member-scheduling annotation (tolerations only of the keys
// the Cluster's tree.memberTolerations allows, never of control-plane
// taints; no selection of control-plane nodes; a OneToOne copy never
// pinned to a member node whose taints it does not tolerate), the leaf
// toleration and priority class dropped, the pod run under an account
// the tree created
// (kosmos-sa-<sa>, never the member's own), and the projected API token
// replaced by a Secret with the host's token for the same ServiceAccount
// bound to the host pod, the host's CA and namespace, so in-cluster
// clients in the member talk to the host's API server (hostAPIEndpoint)
// as they would in the host; without that endpoint, the volume keeps no
// token at all.
//
// # Seams
//
// The handlers reach pods only through two small interfaces (seams.go),
// after virtual-kubelet's node/podcontroller.go: MemberPods (one member's
// pods: the cache, a live read, create, update, delete) and HostPods (the
// host's pods and the virtual nodes they are bound to, status writes,
// events). Both state what may be shared and modified and that every
// method is safe for concurrent use by the workers. Dependency copies and
// volumes (deps.go, storage.go) use the clientsets directly.
//
// # Ownership
//
// Everything the tree writes in a member carries
// app.kubernetes.io/managed-by=kosmos-tree, and a member pod names the UID
// of the host pod it copies. Objects without the label are never updated
// or deleted: a member pod of the same name is reported in an event and
// left alone; a ConfigMap, Secret or ServiceAccount of the same name is
// not overwritten (the pod is refused). In the host, a node of a virtual
// node's name that is not the tree's for that cluster is never updated
// nor its Lease renewed; volumes are deleted under UID preconditions. The
// prefix kosmos-sa- is the tree's in members (translate.Reserved): host
// objects under it are never copied, and pods that name them are refused.
// Copies no synced pod references are collected on every pass; a claim
// copy goes with its host claim.
//
// # Storage
//
// A host claim a pod references is created in the member; once bound
// there, its volume is reflected in the host (translate.HostPV: Retain,
// bound to the host claim, node affinity rewritten to the virtual nodes)
// and the host claim is bound to it.
//
// # Logs and exec
//
// Package kubelet serves the kubelet endpoints the host's API server calls
// for kubectl logs, exec, attach and port-forward on the virtual nodes;
// *Controller implements its Tree interface (endpoint.go), resolving a
// host pod to the member API server that holds its copy.
//
// # Layout
//
//   - translate: the pure core (virtual nodes, pod translation, the pod
//     sync's decision, volumes, Cluster status), table and golden tests;
//   - kubelet: the kubelet endpoint;
//   - this package: the Controller (controller.go: host caches and member
//     syncs; nodes.go: the pass over virtual nodes and leases), the pod
//     sync (member.go, podsync.go, seams.go), dependency copies (deps.go)
//     and volumes (storage.go).
//
// # Usage
//
//	ctl := &tree.Controller{Host: hostClient, Config: hostConfig, Namespace: "kosmos-system"}
//	go (&kubelet.Server{Tree: ctl, ClientCA: pool}).Serve(ctx, ln)
//	err := ctl.Run(ctx)
package tree
