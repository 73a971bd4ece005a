// Package hostaccess embeds the member-side identities of the host's
// reconciler and tree (rbac.yaml of this folder), so the local sandbox
// gives each component in each member exactly the rights a deployment
// gives it.
package hostaccess

import _ "embed"

// RBAC is rbac.yaml of this folder: the ServiceAccounts
// kosmos-host-reconciler and kosmos-host-tree with their roles and
// bindings, as YAML documents.
//
//go:embed rbac.yaml
var RBAC []byte

// Identities of the host's components in a member: the ServiceAccounts
// (in kosmos-system) whose tokens the kubeconfig Secrets carry.
const (
	// ReconcilerAccount is the reconciler's, for kubeconfig.secretRef.
	ReconcilerAccount = "kosmos-host-reconciler"
	// TreeAccount is the tree's, for kubeconfig.treeSecretRef.
	TreeAccount = "kosmos-host-tree"
)
