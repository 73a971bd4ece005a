package tree

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Host ServiceAccount tokens (TokenRequest) are minted for a synced pod
// only in namespaces that opt in. RBAC cannot select namespaces by label,
// so the shipped kosmos-tree-tokens ClusterRole is bound per namespace
// (RoleBinding) and the tree itself checks the label before every request:
// a RoleBinding made by mistake in kube-system mints nothing.
const (
	// LabelTreeTokens on a host namespace, with value TreeTokensEnabled,
	// lets the tree mint tokens of that namespace's ServiceAccounts for
	// the pods it runs in members.
	LabelTreeTokens = "kosmos.io/tree-tokens"
	// TreeTokensEnabled is the value of LabelTreeTokens that opts in.
	TreeTokensEnabled = "enabled"
)

// mayMintToken says whether the tree may mint host ServiceAccount tokens
// in namespace ns: never in kube-system nor Kosmos's own namespace (their
// accounts hold the cluster's and Kosmos's rights), and elsewhere only when
// the namespace carries LabelTreeTokens=enabled.
func mayMintToken(ns *corev1.Namespace) error {
	switch {
	case ns.Name == metav1.NamespaceSystem || ns.Name == v1alpha1.SystemNamespace:
		return fmt.Errorf("namespace %s: the tree never mints tokens of its ServiceAccounts", ns.Name)
	case ns.Labels[LabelTreeTokens] != TreeTokensEnabled:
		return fmt.Errorf("namespace %s has not opted in to host ServiceAccount tokens for pods in member clusters (label %s=%s)", ns.Name, LabelTreeTokens, TreeTokensEnabled)
	}
	return nil
}

// checkTokenNamespace reads host namespace ns and applies mayMintToken.
func (c *Controller) checkTokenNamespace(ctx context.Context, ns string) error {
	n, err := c.hostCS.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("host namespace %s (may its ServiceAccounts' tokens be minted?): %w", ns, err)
	}
	return mayMintToken(n)
}
