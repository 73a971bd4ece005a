package tree

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMayMintToken: host ServiceAccount tokens only in namespaces that opt
// in by label; kube-system and kosmos-system never, label or not.
func TestMayMintToken(t *testing.T) {
	on := map[string]string{LabelTreeTokens: TreeTokensEnabled}
	for _, c := range []struct {
		name   string
		labels map[string]string
		refuse string // "" allowed, else a word of the refusal
	}{
		{"shop", on, ""},
		{"shop", nil, "not opted in"},
		{"shop", map[string]string{LabelTreeTokens: "true"}, "not opted in"},
		{"kube-system", on, "never"},
		{"kosmos-system", on, "never"},
	} {
		err := mayMintToken(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.name, Labels: c.labels}})
		switch {
		case c.refuse == "" && err != nil:
			t.Errorf("%s %v: refused: %v", c.name, c.labels, err)
		case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse)):
			t.Errorf("%s %v: got %v, want a refusal saying %q", c.name, c.labels, err, c.refuse)
		}
	}
}
