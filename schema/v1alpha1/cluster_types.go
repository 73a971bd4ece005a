package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kinds of the desired-state objects the reconciler writes in the host.
const (
	KindCluster            = "Cluster"
	KindDistributionPolicy = "DistributionPolicy"
)

// Cluster is a member cluster as the host's tree controller sees it: how to
// reach it and how it appears as nodes. The reconciler writes one per member
// of the topology; the tree controller reads it and reports in its status.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=kcl,categories=kosmos
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Tree",type=boolean,JSONPath=`.spec.tree.enabled`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
type Cluster struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata; the name is the cluster's name in the topology.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the member as the topology describes it.
	Spec ClusterObjectSpec `json:"spec"`

	// Status is written by the tree controller.
	// +optional
	Status ObjectStatus `json:"status,omitempty"`
}

// ClusterList is a list of Cluster objects.
//
// +kubebuilder:object:root=true
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the clusters.
	Items []Cluster `json:"items"`
}

// ClusterObjectSpec is what the tree controller needs of a member.
type ClusterObjectSpec struct {
	// Kubeconfig references the Secret (in the host) holding the tree's
	// kubeconfig for the member (the topology's kubeconfig.treeSecretRef,
	// or its secretRef when that is unset); never the credential itself,
	// and never the reconciler's own reference when the two differ.
	Kubeconfig SecretKeyRef `json:"kubeconfig"`

	// APIEndpoint is where pods in other clusters reach this member's API
	// server.
	// +optional
	APIEndpoint string `json:"apiEndpoint,omitempty"`

	// HostAPIEndpoint is where pods running in this member reach the host's
	// API server (KUBERNETES_SERVICE_HOST/PORT of synced pods).
	// +optional
	HostAPIEndpoint string `json:"hostAPIEndpoint,omitempty"`

	// Region of the member (topology.kubernetes.io/region on its nodes).
	// +optional
	Region string `json:"region,omitempty"`

	// Zone of the member (topology.kubernetes.io/zone on its nodes).
	// +optional
	Zone string `json:"zone,omitempty"`

	// Labels of the member, copied onto its virtual nodes.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Tree says whether and how the member appears as nodes of the host.
	Tree TreeSpec `json:"tree"`

	// GlobalCIDRs maps the member's real ranges to global ones, so that pod
	// IPs reported to the host are the addresses other clusters can reach.
	// +optional
	GlobalCIDRs map[string]string `json:"globalCIDRs,omitempty"`

	// PodCIDRs are the member's pod ranges as the topology states them. A
	// pod IP the member reports is written to the host pod only when one of
	// them holds it; with none, no member pod IP reaches the host.
	// +optional
	PodCIDRs []string `json:"podCIDRs,omitempty"`

	// ServiceCIDRs are the member's service ranges as the topology states
	// them. A host Service address inside one of them that the host's
	// GlobalCIDRs do not map would reach the member's own Service: copies
	// then keep the member's DNS and get no host service variables.
	// +optional
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`

	// HostServiceCIDRs are the host cluster's service ranges as the
	// topology states them.
	// +optional
	HostServiceCIDRs []string `json:"hostServiceCIDRs,omitempty"`

	// HostGlobalCIDRs are the host cluster's real → global range mappings:
	// copies reach a host Service of a mapped range (its DNS among them) at
	// its global address.
	// +optional
	HostGlobalCIDRs map[string]string `json:"hostGlobalCIDRs,omitempty"`
}

// ObjectStatus is the kstatus-compatible status of a desired-state object.
type ObjectStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DistributionPolicy tells the scheduler plugins how to spread the replicas
// of matching pods over clusters. The reconciler writes one per policy of
// the topology, in the host.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=kdp,categories=kosmos
// +kubebuilder:subresource:status
type DistributionPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata; the name is the policy's name.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the policy.
	Spec DistributionPolicyObjectSpec `json:"spec"`

	// Status is written by the scheduler plugins.
	// +optional
	Status ObjectStatus `json:"status,omitempty"`
}

// DistributionPolicyList is a list of DistributionPolicy objects.
//
// +kubebuilder:object:root=true
type DistributionPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the policies.
	Items []DistributionPolicy `json:"items"`
}

// DistributionPolicyObjectSpec is a policy with its targets resolved.
type DistributionPolicyObjectSpec struct {
	// Selector chooses the pods the policy governs.
	Selector PodSelector `json:"selector"`

	// Placement says where the selected pods go, as in the topology; an empty
	// cluster list has been expanded to every eligible cluster at weight 1.
	Placement Placement `json:"placement"`

	// HostCluster names the host, whose real nodes are a target when
	// placement.includeHost is set.
	HostCluster string `json:"hostCluster"`

	// Domains give each target cluster's region and zone, for spread.
	// +optional
	Domains []ClusterDomain `json:"domains,omitempty"`
}

// ClusterDomain is where a cluster sits.
type ClusterDomain struct {
	// Cluster name.
	Cluster string `json:"cluster"`
	// Region of the cluster.
	// +optional
	Region string `json:"region,omitempty"`
	// Zone of the cluster.
	// +optional
	Zone string `json:"zone,omitempty"`
}

func init() {
	objectTypes = append(objectTypes, &Cluster{}, &ClusterList{}, &DistributionPolicy{}, &DistributionPolicyList{})
}
