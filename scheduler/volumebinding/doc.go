// Package volumebinding is the KosmosVolumeBinding scheduler plugin. It
// takes the place of the stock VolumeBinding and VolumeZone plugins in the
// kosmos-scheduler profile, so that a pod whose claims are unbound can be
// placed on a virtual node.
//
// # Why
//
// The stock VolumeBinding refuses a pod with an unbound Immediate claim
// in PreFilter ("unbound immediate PersistentVolumeClaims"), before any
// node is looked at, and for a WaitForFirstConsumer claim it waits in
// PreBind for the host's provisioner, which cannot make a volume in a
// member cluster. VolumeZone refuses unbound claims whose class the host
// lacks. Yet the tree can serve such a pod: once the pod is bound to a
// member's virtual node, the tree creates the claim in the member, the
// member's provisioner binds it (at once or for the member's pod), and
// the tree reflects the member's volume in the host (translate.HostPV)
// and binds the host claim to it.
//
// # What it decides
//
// On the host's own nodes nothing changes: the stock VolumeBinding and
// VolumeZone run inside this plugin, with their PreFilter verdicts
// applied to those nodes only. On a virtual node (label kosmos.io/cluster)
// FitsVirtual decides, a pure function: every unbound claim's storage
// class must be one the member offers (the node's
// kosmos.io/storage-classes annotation, written by the tree from the
// member's StorageClasses), Immediate and WaitForFirstConsumer alike, and
// every bound claim's volume must allow the node (node affinity: the
// tree's reflected volumes name their cluster). Reserve and PreBind do
// nothing for a virtual node: the claim is made in the member by the tree.
//
// The plugin has no args; the stock plugins get their defaults.
//
// # Usage
//
//	registry := frameworkruntime.Registry{volumebinding.Name: volumebinding.New}
package volumebinding
