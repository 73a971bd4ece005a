// Package leaffit is the KosmosLeafFit scheduler plugin: it lets a pod onto
// a member cluster's virtual node only when one single node of that member
// has room for it, per the free-resource summary the tree writes on the
// virtual node (annotation kosmos.io/free-resources). A cluster whose total
// is large but fragmented does not get pods none of its nodes can run.
//
// The plugin has no args: New ignores any it is given.
//
// # Usage
//
//	registry := frameworkruntime.Registry{leaffit.Name: leaffit.New}
package leaffit
