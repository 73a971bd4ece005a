package volumebinding

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/storage/volume"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Claim is what the decision needs to know of one claim of the pod.
type Claim struct {
	// Name is namespace/name, for messages.
	Name string
	// Missing says the claim does not exist (yet) in the host.
	Missing bool
	// VolumeName is the claim's spec.volumeName (empty: unbound).
	VolumeName string
	// Volume is that volume when the host has it (nil otherwise).
	Volume *corev1.PersistentVolume
	// Class is the claim's storage class name (empty: none).
	Class string
}

// Unbound says the claim still waits for a volume.
func (c Claim) Unbound() bool { return !c.Missing && c.VolumeName == "" }

// IsVirtual says whether node stands for a member cluster (the tree's
// virtual node).
func IsVirtual(n *corev1.Node) bool { return n != nil && n.Labels[v1alpha1.LabelCluster] != "" }

// AnyUnbound says whether a claim of the pod waits for a volume.
func AnyUnbound(claims []Claim) bool {
	for _, c := range claims {
		if c.Unbound() {
			return true
		}
	}
	return false
}

// FitsVirtual decides whether a pod with these claims can go to virtual
// node n: every unbound claim's class is one the member offers
// (v1alpha1.AnnotationStorageClasses), whatever its binding mode (the tree
// creates the claim in the member, whose provisioner acts at once or for
// the member's pod), and every bound claim's volume may be used on n (the
// tree's reflected volumes name the cluster's virtual nodes in their node
// affinity). It returns "" when the pod fits, else the reason.
func FitsVirtual(claims []Claim, n *corev1.Node) string {
	offered := v1alpha1.ParseStorageClasses(n.Annotations[v1alpha1.AnnotationStorageClasses])
	for _, c := range claims {
		switch {
		case c.Missing:
			return fmt.Sprintf("persistentvolumeclaim %q not found", c.Name)
		case c.VolumeName == "" && c.Class == "":
			return fmt.Sprintf("claim %s has no storage class: no member can provision it", c.Name)
		case c.VolumeName == "" && !offered[c.Class]:
			return fmt.Sprintf("the member cluster offers no storage class %q (claim %s)", c.Class, c.Name)
		case c.VolumeName == "":
		case c.Volume == nil:
			return fmt.Sprintf("volume %s of claim %s not found", c.VolumeName, c.Name)
		default:
			if err := volume.CheckNodeAffinity(c.Volume, n.Labels); err != nil {
				return fmt.Sprintf("volume %s of claim %s does not fit the node: %v", c.VolumeName, c.Name, err)
			}
		}
	}
	return ""
}
