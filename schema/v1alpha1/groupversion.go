// +kubebuilder:object:generate=true
// +groupName=kosmos.io

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and version of every Kosmos API type.
const (
	Group   = "kosmos.io"
	Version = "v1alpha1"
)

// GroupVersion is the group and version of the Kosmos API.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// APIVersion is the apiVersion string every Kosmos document carries.
var APIVersion = GroupVersion.String()

var (
	// SchemeBuilder registers the Kosmos types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the Kosmos types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// objectTypes lists every top-level Kosmos type and its list type; each file
// that defines one appends to it in an init function.
var objectTypes []runtime.Object

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, objectTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
