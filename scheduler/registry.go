package scheduler

import (
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"kosmos.io/kosmos/scheduler/distribution"
	"kosmos.io/kosmos/scheduler/leaffit"
	"kosmos.io/kosmos/scheduler/leaftaint"
	"kosmos.io/kosmos/scheduler/volumebinding"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Labels, taint and annotation of a virtual node (the contract with the
// tree, defined in v1alpha1).
const (
	LabelCluster            = v1alpha1.LabelCluster
	TaintLeaf               = v1alpha1.TaintLeaf
	AnnotationFreeResources = v1alpha1.AnnotationFreeResources
)

// Registry is what `kosmos scheduler` registers with kube-scheduler: each
// Kosmos plugin by its Name and New.
func Registry() frameworkruntime.Registry {
	return frameworkruntime.Registry{
		distribution.Name:  distribution.New,
		leaffit.Name:       leaffit.New,
		leaftaint.Name:     leaftaint.New,
		volumebinding.Name: volumebinding.New,
	}
}
