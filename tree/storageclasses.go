package tree

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// The storage classes a member offers are published on its virtual nodes
// (v1alpha1.AnnotationStorageClasses), where KosmosVolumeBinding reads
// them: a pod whose claims are unbound may go to the virtual node of a
// member that has their class. The annotation is always written, empty
// when the member has no class (or its classes cannot be read yet), so
// that a class the member drops stops attracting pods.

// watchStorageClasses makes the member's StorageClass informer, started
// with the others. Its sync is not waited for: until it fills, the
// member offers no class.
func (m *memberSync) watchStorageClasses() {
	_ = m.all.Storage().V1().StorageClasses().Informer()
}

// storageClasses is the annotation value of the classes the member has.
func (m *memberSync) storageClasses() string {
	classes, err := m.all.Storage().V1().StorageClasses().Lister().List(labels.Everything())
	if err != nil {
		return ""
	}
	names := make([]string, 0, len(classes))
	for _, c := range classes {
		names = append(names, c.Name)
	}
	return v1alpha1.FormatStorageClasses(names)
}

// offerStorageClasses writes the member's classes on virtual node n.
func offerStorageClasses(n *corev1.Node, classes string) {
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[v1alpha1.AnnotationStorageClasses] = classes
}
