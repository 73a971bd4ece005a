package v1alpha1

// The ownership contract: how every object Kosmos writes is marked, where
// Kosmos lives, and the annotations a user sets on a topology to steer
// pruning. Every room imports these names from here.
const (
	// LabelManagedBy and ManagedBy mark every object the reconciler writes
	// (app.kubernetes.io/managed-by=kosmos); LabelTopology names the
	// topology it belongs to. Only objects carrying both are ever deleted.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kosmos"
	LabelTopology  = "kosmos.io/topology"

	// LabelRole marks the NodeConfig of a Gateway cluster's gateway, so the
	// gateway in force can be read back as a fact.
	LabelRole   = "kosmos.io/role"
	RoleGateway = "gateway"

	// FieldManager is the server-side apply field manager of every write
	// the reconciler makes.
	FieldManager = "kosmos"

	// SystemNamespace is where Kosmos runs in every cluster. It is applied,
	// never deleted.
	SystemNamespace = "kosmos-system"

	// DNSConfigMap (in SystemNamespace) holds, in every cluster, the
	// Corefile of `kosmos dns` (key Corefile).
	DNSConfigMap = "kosmos-dns"

	// InventoryPrefix + the topology's name is the ConfigMap (in
	// SystemNamespace of the host) that records what Kosmos applied in every
	// cluster; LabelInventory (value: the topology) marks it.
	InventoryPrefix = "kosmos-inventory-"
	LabelInventory  = "kosmos.io/inventory"

	// FinalizerCleanup holds a KosmosTopology object until everything Kosmos
	// wrote for it has been pruned from every cluster.
	FinalizerCleanup = "kosmos.io/cleanup"

	// FinalizerTreeDrain holds a Cluster object (in the host) that the tree
	// serves until its virtual nodes have been drained and deleted: a
	// cluster that leaves is cordoned, its pods are evicted through the host
	// (PodDisruptionBudgets apply) and end in the member first, so no pod
	// runs twice.
	FinalizerTreeDrain = "kosmos.io/tree-drain"

	// AnnotationConfirmDeletions, on a topology, confirms one pass whose
	// deletions trip the deletion guard. Its value is the token the guard
	// printed: a hash of exactly those deletions, so a confirmation left in
	// place never approves a different wipe.
	AnnotationConfirmDeletions = "kosmos.io/confirm-deletions"

	// AnnotationForgetClusters, on a topology, lists (comma-separated)
	// clusters that left the topology and must be forgotten without the last
	// prune: their objects stay where they are (use it when a cluster is
	// gone for good and cannot be reached).
	AnnotationForgetClusters = "kosmos.io/forget-clusters"
)
