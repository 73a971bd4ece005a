package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// MemberScheduling is what AnnotationMemberScheduling carries.
type MemberScheduling struct {
	NodeSelector              map[string]string                 `json:"nodeSelector,omitempty"`
	Affinity                  *corev1.Affinity                  `json:"affinity,omitempty"`
	Tolerations               []corev1.Toleration               `json:"tolerations,omitempty"`
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
}

// PodOptions say how a host pod becomes a member pod.
type PodOptions struct {
	// VirtualNode is the host node the pod is bound to.
	VirtualNode string
	// MemberNode is the member node to run on (OneToOne); empty leaves the
	// choice to the member's scheduler (Aggregate).
	MemberNode string
	// HostAPIHost and HostAPIPort, when set, become KUBERNETES_SERVICE_HOST
	// and _PORT, so in-cluster clients reach the host's API server.
	HostAPIHost, HostAPIPort string
	// Owner is the LabelOwner value of the member sync (OwnerID).
	Owner string
	// MemberTolerations are the taint keys pods may tolerate in the member
	// (the Cluster's tree.memberTolerations); see scheduling.go.
	MemberTolerations []string
	// MemberNodeTaints are the taints of MemberNode (OneToOne): the copy is
	// pinned there past the member's scheduler, so MemberPod checks them.
	MemberNodeTaints []corev1.Taint
	// GroupSelector and AvoidGroups place an Aggregate copy among the
	// member's node groups (GroupPlacement): on the nodes GroupSelector
	// selects, off the nodes of every AvoidGroups selector.
	GroupSelector map[string]string
	AvoidGroups   []map[string]string
	// HostDNS, when set, is the host's cluster DNS the copy resolves names
	// at (hostservices.go).
	HostDNS *HostDNS
	// HostServiceLinks says the copy gets HostServiceEnv (ServiceEnv of
	// the host's Services of its namespace) instead of the member's
	// service links.
	HostServiceLinks bool
	HostServiceEnv   []corev1.EnvVar
}

// OwnerID identifies the member sync of Cluster cluster in the host whose
// identity is hostID (its kube-system namespace's UID), as a label value.
func OwnerID(hostID, cluster string) string {
	sum := sha256.Sum256([]byte(hostID + "/" + cluster))
	return hex.EncodeToString(sum[:12])
}

// TokenSecretName is the member Secret that stands in for the projected
// token of the host pod of UID uid: one per pod, for the token in it is
// bound to that pod (it stops working when the pod is gone).
func TokenSecretName(uid types.UID) string {
	sum := sha256.Sum256([]byte(uid))
	return TokenSecretPrefix + hex.EncodeToString(sum[:10])
}

// MemberAccountName is the member ServiceAccount a copy of a pod of host
// ServiceAccount sa runs under: one the tree creates (under the reserved
// prefix), never an account of the member's own, whose identity (tokens,
// image pull Secrets, what CSI drivers and policies grant it) a host pod
// must not borrow.
func MemberAccountName(sa string) string { return TokenSecretPrefix + sa }

// MemberPod translates host pod hp into the pod to create in the member:
// same namespace and name; ownership marks; nodeName cleared or set to the
// mirrored node; host scheduling constraints replaced by the member-side
// ones of AnnotationMemberScheduling (none when absent; bounded as
// scheduling.go says); the leaf toleration, tolerations the member does
// not allow and the priority class dropped; run under the tree's own
// member account (MemberAccountName); the projected API token replaced by
// a Secret carrying the host's token for the same ServiceAccount, bound
// to hp (TokenSecretName), and
// KUBERNETES_SERVICE_HOST/PORT aimed at the host when the host's endpoint
// is known, dropped (CA and namespace kept) when it is not. hp is not
// modified. The error names what
// cannot be carried over (a malformed annotation, a token for another
// audience, a Secret or ConfigMap under the reserved TokenSecretPrefix, a
// toleration or node selection the member does not allow); the pod is
// then not created.
func MemberPod(hp *corev1.Pod, o PodOptions) (*corev1.Pod, error) {
	ms, err := memberScheduling(hp, o)
	if err != nil {
		return nil, err
	}
	if err := reservedRefs(hp); err != nil {
		return nil, err
	}
	for _, v := range hp.Spec.Volumes {
		if audienceToken(&v) {
			return nil, fmt.Errorf("volume %s: projected service account tokens for an audience are not supported in member clusters (the member would issue them for its own account)", v.Name)
		}
	}
	mp := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   hp.Namespace,
			Name:        hp.Name,
			Labels:      memberLabels(hp.Labels, o.Owner),
			Annotations: memberAnnotations(hp, o.VirtualNode),
		},
	}
	spec := hp.Spec.DeepCopy()
	spec.NodeName = o.MemberNode
	spec.NodeSelector, spec.Affinity, spec.TopologySpreadConstraints = ms.NodeSelector, ms.Affinity, ms.TopologySpreadConstraints
	if err := placeInGroup(spec, o); err != nil {
		return nil, err
	}
	useHostDNS(spec, hp.Namespace, hp.Annotations, o.HostDNS)
	if o.HostServiceLinks {
		useHostServiceEnv(spec, o.HostServiceEnv)
	}
	spec.SchedulerName = ""
	spec.PriorityClassName, spec.Priority, spec.PreemptionPolicy = "", nil, nil
	spec.Tolerations = append(allowedTolerations(memberTolerations(spec.Tolerations), o.MemberTolerations), ms.Tolerations...)
	spec.EphemeralContainers = nil
	f := false
	spec.AutomountServiceAccountToken = &f
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	spec.DeprecatedServiceAccount = ""
	spec.ServiceAccountName = MemberAccountName(sa)
	if err := checkPinned(spec.Tolerations, o); err != nil {
		return nil, err
	}
	apiAccess(spec, hp.UID, o)
	mp.Spec = *spec
	return mp, nil
}

// memberScheduling reads hp's AnnotationMemberScheduling (empty when
// absent) and refuses what the member does not allow (scheduling.go).
func memberScheduling(hp *corev1.Pod, o PodOptions) (MemberScheduling, error) {
	var ms MemberScheduling
	if raw, ok := hp.Annotations[AnnotationMemberScheduling]; ok {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ms); err != nil {
			return ms, fmt.Errorf("annotation %s: %v", AnnotationMemberScheduling, err)
		}
	}
	return ms, checkMemberScheduling(&ms, o.MemberTolerations)
}

// apiAccess rewrites the API access of the copy of host pod uid. The host
// token goes only where it is used against the host; without a host API
// endpoint the projected volume keeps its CA and namespace but loses its
// token: no member token, of any account, is ever mounted into a host
// pod.
func apiAccess(spec *corev1.PodSpec, uid types.UID, o PodOptions) {
	for i := range spec.Volumes {
		switch v := &spec.Volumes[i]; {
		case !isAPIAccess(v):
		case o.HostAPIHost != "":
			v.VolumeSource = tokenVolume(TokenSecretName(uid), v.Projected.DefaultMode)
		default:
			v.Projected.Sources = slices.DeleteFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil })
		}
	}
	if o.HostAPIHost == "" {
		return
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			cs[i].Env = withAPIEnv(cs[i].Env, o.HostAPIHost, o.HostAPIPort)
		}
	}
}

// Reserved tells whether a Secret or ConfigMap name lies under
// TokenSecretPrefix, which the tree keeps for its token Secrets in
// members: a host object of such a name is never copied.
func Reserved(name string) bool { return strings.HasPrefix(name, TokenSecretPrefix) }

// reservedRefs refuses a pod that references a Secret or ConfigMap under
// the reserved prefix: its copy would take the place of (or be taken for)
// a token Secret the tree writes.
func reservedRefs(hp *corev1.Pod) error {
	d := DepsOf(hp)
	for _, l := range []struct {
		kind  string
		names []string
	}{{"Secret", d.Secrets}, {"ConfigMap", d.ConfigMaps}} {
		for _, n := range l.names {
			if Reserved(n) {
				return fmt.Errorf("%s %s: names starting with %q are reserved for the tree's token Secrets in member clusters", l.kind, n, TokenSecretPrefix)
			}
		}
	}
	return nil
}

func memberLabels(in map[string]string, owner string) map[string]string {
	out := maps.Clone(in)
	if out == nil {
		out = map[string]string{}
	}
	out[LabelOrigin] = OriginHost
	out[LabelManagedBy] = ManagedBy
	if owner != "" {
		out[LabelOwner] = owner
	}
	return out
}

func memberAnnotations(hp *corev1.Pod, vnode string) map[string]string {
	out := maps.Clone(hp.Annotations)
	if out == nil {
		out = map[string]string{}
	}
	delete(out, AnnotationMemberScheduling)
	out[AnnotationHostPodUID] = string(hp.UID)
	out[AnnotationVirtualNode] = vnode
	out[AnnotationHostSpec] = hostSpecHash(hp)
	return out
}

// hostSpecHash digests what UpdatePod carries down: labels, annotations,
// images, the deadline and the tolerations.
func hostSpecHash(hp *corev1.Pod) string {
	raw, _ := json.Marshal(struct { // plain data: cannot fail
		L, A map[string]string
		I    []string
		D    *int64
		T    []corev1.Toleration
	}{hp.Labels, hp.Annotations, images(hp), hp.Spec.ActiveDeadlineSeconds, hp.Spec.Tolerations})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

func images(p *corev1.Pod) []string {
	var out []string
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			out = append(out, c.Name+"="+c.Image)
		}
	}
	return out
}

// memberTolerations drops what only makes sense in the host: the leaf
// taint's toleration (members carry no such taint) and the host's
// not-ready/unreachable defaults (the member's admission adds its own).
func memberTolerations(in []corev1.Toleration) []corev1.Toleration {
	var out []corev1.Toleration
	for _, t := range in {
		switch t.Key {
		case TaintLeaf, corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable:
			continue
		}
		out = append(out, t)
	}
	return out
}

// isAPIAccess tells the projected volume that the ServiceAccount admission
// adds (kube-api-access-*: the token, kube-root-ca.crt and the namespace).
func isAPIAccess(v *corev1.Volume) bool {
	if v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience == "" {
			return true
		}
	}
	return false
}

// audienceToken tells a projected volume with a token for another audience.
func audienceToken(v *corev1.Volume) bool {
	if v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience != "" {
			return true
		}
	}
	return false
}

// NeedsHostToken tells whether the member copy of hp mounts the host's
// token for its ServiceAccount (it has the API access volume and the
// cluster says where the host's API server is).
func NeedsHostToken(hp *corev1.Pod, o PodOptions) bool {
	return o.HostAPIHost != "" && slices.ContainsFunc(hp.Spec.Volumes, func(v corev1.Volume) bool { return isAPIAccess(&v) })
}

func tokenVolume(secret string, mode *int32) corev1.VolumeSource {
	return corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  secret,
		DefaultMode: mode,
		Items: []corev1.KeyToPath{
			{Key: corev1.ServiceAccountTokenKey, Path: corev1.ServiceAccountTokenKey},
			{Key: corev1.ServiceAccountRootCAKey, Path: corev1.ServiceAccountRootCAKey},
			{Key: corev1.ServiceAccountNamespaceKey, Path: corev1.ServiceAccountNamespaceKey},
		},
	}}
}

func withAPIEnv(env []corev1.EnvVar, host, port string) []corev1.EnvVar {
	env = slices.DeleteFunc(env, func(e corev1.EnvVar) bool {
		return e.Name == "KUBERNETES_SERVICE_HOST" || e.Name == "KUBERNETES_SERVICE_PORT"
	})
	return append(env, corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: host}, corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: port})
}

// UpdatePod returns have (the member pod) with want's changes in the
// fields a running pod may change: images, labels, annotations,
// activeDeadlineSeconds and added tolerations; ok is false when the host
// pod has not changed them since they were last carried down (what the
// member's admission added or rewrote is left alone). Labels and
// annotations are merged: keys the member added stay. have is not
// modified.
func UpdatePod(want, have *corev1.Pod) (out *corev1.Pod, ok bool) {
	if want.Annotations[AnnotationHostSpec] == have.Annotations[AnnotationHostSpec] {
		return have, false
	}
	out = have.DeepCopy()
	out.Labels = merge(out.Labels, want.Labels)
	out.Annotations = merge(out.Annotations, want.Annotations)
	out.Spec.ActiveDeadlineSeconds = want.Spec.ActiveDeadlineSeconds
	setImages(out.Spec.Containers, want.Spec.Containers)
	setImages(out.Spec.InitContainers, want.Spec.InitContainers)
	for _, t := range want.Spec.Tolerations {
		if !slices.ContainsFunc(out.Spec.Tolerations, func(h corev1.Toleration) bool { return h.MatchToleration(&t) }) {
			out.Spec.Tolerations = append(out.Spec.Tolerations, t)
		}
	}
	return out, true
}

func setImages(dst, src []corev1.Container) {
	for i := range dst {
		if j := slices.IndexFunc(src, func(c corev1.Container) bool { return c.Name == dst[i].Name }); j >= 0 {
			dst[i].Image = src[j].Image
		}
	}
}

// HostStatus is the status the host pod should show for member pod mp:
// the member's phase, conditions, container statuses, start time, host IPs
// and QoS, with pod IPs translated to the global addresses other clusters
// reach (where the member's pod CIDR is mapped). Pod IPs outside the
// member's pod CIDRs, and host IPs that are no unicast address, are left
// out and returned as refused: the rest of the status still goes up (a
// pod without an IP is no Service endpoint). Conditions the member does
// not report (readiness gates set by host controllers) are kept from
// have, and so is the host's PodScheduled unless the member cannot place
// the pod.
func HostStatus(mp *corev1.Pod, have *corev1.PodStatus, net MemberNetwork) (st corev1.PodStatus, refused []string) {
	st = *mp.Status.DeepCopy()
	refused = append(net.podIPs(&st), hostIPs(&st)...)
	// PodScheduled is the host scheduler's word (bound to the virtual
	// node): the member's own binding does not replace it, only its
	// failure to place the pod does (that is why the pod waits).
	st.Conditions = slices.DeleteFunc(st.Conditions, func(m corev1.PodCondition) bool {
		return m.Type == corev1.PodScheduled && m.Status == corev1.ConditionTrue
	})
	for _, c := range have.Conditions {
		if !slices.ContainsFunc(st.Conditions, func(m corev1.PodCondition) bool { return m.Type == c.Type }) {
			st.Conditions = append(st.Conditions, c)
		}
	}
	st.NominatedNodeName = have.NominatedNodeName
	return st, refused
}

// SplitEndpoint reads host and port from an API endpoint URL or host:port
// (port 443 when none), for PodOptions; empty when the endpoint is empty
// or unusable.
func SplitEndpoint(ep string) (host, port string) {
	if ep == "" {
		return "", ""
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Hostname() == "" {
		return "", ""
	}
	port = u.Port()
	if port == "" {
		port = "443"
	}
	return u.Hostname(), port
}
