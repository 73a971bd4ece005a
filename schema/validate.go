package schema

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Validate checks a defaulted topology and returns every problem found, each
// with its field path. It is pure: the loader adds file positions, the
// reconciler uses it as is for topologies read from the cluster.
func Validate(t *v1alpha1.KosmosTopology) Problems {
	v := &validator{spec: &t.Spec}
	v.metadata(&t.ObjectMeta)
	v.clusters()
	v.network()
	v.cidrs()
	v.policies()
	v.services()
	if msgs := validation.IsDNS1123Subdomain(t.Spec.DNS.Domain); len(msgs) > 0 {
		v.add("spec.dns.domain", "%q is not a DNS name: %s", t.Spec.DNS.Domain, strings.Join(msgs, "; "))
	}
	return v.problems()
}

type validator struct {
	collector
	spec *v1alpha1.TopologySpec
}

func clusterPath(i int) string { return fmt.Sprintf("spec.clusters[%d]", i) }

func (v *validator) metadata(m *metav1.ObjectMeta) {
	switch {
	case m.Name == "":
		v.add("metadata.name", "required: the topology's name labels every object Kosmos writes")
	default:
		v.labelValue("metadata.name", m.Name)
	}
	v.labels("metadata.labels", m.Labels)
	for k, val := range m.Annotations {
		if looksLikeSecretValue(val) {
			v.add("metadata.annotations["+k+"]", "looks like a credential: the topology never holds credentials")
		}
	}
}

// enum reports a value outside its allowed set.
func (v *validator) enum(path, value string, allowed ...string) {
	if value == "" {
		v.add(path, "required: one of %s", strings.Join(allowed, ", "))
	} else if !slices.Contains(allowed, value) {
		hint := ""
		if best := closest(value, allowed); best != "" {
			hint = fmt.Sprintf("; did you mean %q?", best)
		}
		v.add(path, "%q is not one of %s%s", value, strings.Join(allowed, ", "), hint)
	}
}

func (v *validator) dns1123Label(path, value string) {
	if value == "" {
		v.add(path, "required")
	} else if msgs := validation.IsDNS1123Label(value); len(msgs) > 0 {
		v.add(path, "%q is not a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)", value)
	}
}

func (v *validator) dns1123Subdomain(path, value string) {
	if value == "" {
		v.add(path, "required")
	} else if msgs := validation.IsDNS1123Subdomain(value); len(msgs) > 0 {
		v.add(path, "%q is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')", value)
	}
}

func (v *validator) labelValue(path, value string) {
	if msgs := validation.IsValidLabelValue(value); len(msgs) > 0 {
		v.add(path, "%q is not a valid label value: %s", value, msgs[0])
	}
}

// labels checks a label map: keys are qualified names, values label values,
// and neither looks like a credential.
func (v *validator) labels(path string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		p := fmt.Sprintf("%s[%s]", path, k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			v.add(p, "%q is not a valid label key: %s", k, msgs[0])
		}
		if looksLikeSecretValue(m[k]) || looksLikeCredentialField(k) {
			v.add(p, "looks like a credential: the topology never holds credentials")
			continue
		}
		v.labelValue(p, m[k])
	}
}

var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.`)

// looksLikeSecretValue reports whether a string value looks like a key,
// certificate or token, so that it is refused without being echoed.
func looksLikeSecretValue(s string) bool {
	return strings.Contains(s, "-----BEGIN") || jwtRE.MatchString(s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (v *validator) clusters() {
	cs := v.spec.Clusters
	if len(cs) == 0 {
		v.add("spec.clusters", "required: at least one cluster, and exactly one with role host")
		return
	}
	names := map[string]int{}
	host := -1
	for i := range cs {
		c, p := &cs[i], clusterPath(i)
		v.dns1123Label(p+".name", c.Name)
		if j, dup := names[c.Name]; dup && c.Name != "" {
			v.add(p+".name", "%q is already the name of %s", c.Name, clusterPath(j))
		} else {
			names[c.Name] = i
		}
		v.enum(p+".role", string(c.Role), string(v1alpha1.RoleHost), string(v1alpha1.RoleMember))
		if c.Role == v1alpha1.RoleHost {
			if host >= 0 {
				v.add(p+".role", "a second host: %s is the host already; exactly one cluster is the host", clusterPath(host))
			} else {
				host = i
			}
		}
		v.cluster(c, p)
	}
	if host < 0 {
		v.add("spec.clusters", "no cluster has role host: exactly one must")
	}
}

func (v *validator) cluster(c *v1alpha1.ClusterSpec, p string) {
	v.kubeconfig(&c.Kubeconfig, p+".kubeconfig")
	if c.APIEndpoint != "" {
		v.apiEndpoint(p+".apiEndpoint", c.APIEndpoint)
	}
	if c.Region != "" {
		v.labelValue(p+".region", c.Region)
	}
	if c.Zone != "" {
		v.labelValue(p+".zone", c.Zone)
	}
	v.labels(p+".labels", c.Labels)

	n, np := &c.Network, p+".network"
	v.enum(np+".mode", string(n.Mode), string(v1alpha1.ModeP2P), string(v1alpha1.ModeGateway))
	if n.Encryption != "" {
		v.enum(np+".encryption", string(n.Encryption), string(v1alpha1.EncryptionNone), string(v1alpha1.EncryptionWireGuard))
	}
	v.enum(np+".ipFamily", string(n.IPFamily), string(v1alpha1.IPv4), string(v1alpha1.IPv6), string(v1alpha1.DualStack))
	v.enum(np+".ipam", string(n.IPAM), string(v1alpha1.IPAMAuto), string(v1alpha1.IPAMNodeSpec), string(v1alpha1.IPAMCalico), string(v1alpha1.IPAMCilium))
	if _, err := v1alpha1.ParseNIC(n.NIC); err != nil {
		v.add(np+".nic", "%v", err)
	}
	if n.Gateway.Replicas < 1 {
		v.add(np+".gateway.replicas", "%d is less than 1", n.Gateway.Replicas)
	}
	v.labels(np+".gateway.nodeSelector", n.Gateway.NodeSelector)
	if c.NetworkEnabled() && len(n.PodCIDRs) == 0 {
		v.add(np+".podCIDRs", "required: the cluster's pod CIDRs, when its network is enabled")
	}

	t, tp := &c.Tree, p+".tree"
	if c.Role == v1alpha1.RoleHost && c.TreeEnabled() {
		v.add(tp+".enabled", "the host cannot appear as a node of itself; only members can")
	}
	v.enum(tp+".mode", string(t.Mode), string(v1alpha1.TreeAggregate), string(v1alpha1.TreeOneToOne))
	v.labels(tp+".nodeSelector", t.NodeSelector)
	v.labels(tp+".nodeLabels", t.NodeLabels)
	for j, key := range t.MemberTolerations {
		ktp := fmt.Sprintf("%s.memberTolerations[%d]", tp, j)
		if msgs := validation.IsQualifiedName(key); len(msgs) > 0 {
			v.add(ktp, "%q is not a valid taint key: %s", key, msgs[0])
		} else if key == "node-role.kubernetes.io/control-plane" || key == "node-role.kubernetes.io/master" {
			v.add(ktp, "%q: pods from the host never tolerate a member's control-plane taints", key)
		}
	}
	v.taints(tp+".nodeTaints", t.NodeTaints)
	v.nodeGroups(c.Name, t, tp)
}

func (v *validator) taints(p string, taints []v1alpha1.Taint) {
	for j, taint := range taints {
		ttp := fmt.Sprintf("%s[%d]", p, j)
		if msgs := validation.IsQualifiedName(taint.Key); len(msgs) > 0 {
			v.add(ttp+".key", "%q is not a valid taint key: %s", taint.Key, msgs[0])
		}
		if taint.Value != "" {
			v.labelValue(ttp+".value", taint.Value)
		}
		v.enum(ttp+".effect", string(taint.Effect), "NoSchedule", "PreferNoSchedule", "NoExecute")
	}
}

// nodeGroups checks tree.nodeGroups: Aggregate mode only; names DNS-1123
// labels, unique; each selector non-empty (an empty one would take every
// node from the default virtual node); the group's virtual node name,
// kosmos-<cluster>.<group>.group (tree/translate GroupNodeName), is also
// its kubernetes.io/hostname label, so at most 63 characters.
func (v *validator) nodeGroups(cluster string, t *v1alpha1.TreeSpec, tp string) {
	if len(t.NodeGroups) > 0 && t.Mode == v1alpha1.TreeOneToOne {
		v.add(tp+".nodeGroups", "node groups need mode Aggregate (OneToOne already shows every member node on its own)")
	}
	seen := map[string]bool{}
	for j, g := range t.NodeGroups {
		gp := fmt.Sprintf("%s.nodeGroups[%d]", tp, j)
		if msgs := validation.IsDNS1123Label(g.Name); len(msgs) > 0 {
			v.add(gp+".name", "%q is not a DNS-1123 label: %s", g.Name, msgs[0])
		} else if seen[g.Name] {
			v.add(gp+".name", "%q names another group of this cluster too", g.Name)
		} else if node := "kosmos-" + cluster + "." + g.Name + ".group"; len(node) > validation.LabelValueMaxLength {
			v.add(gp+".name", "virtual node name %q is %d characters, more than the %d its kubernetes.io/hostname label may have: shorten the group or cluster name", node, len(node), validation.LabelValueMaxLength)
		}
		seen[g.Name] = true
		if len(g.NodeSelector) == 0 {
			v.add(gp+".nodeSelector", "required: the labels of the group's member nodes")
		}
		v.labels(gp+".nodeSelector", g.NodeSelector)
		v.labels(gp+".labels", g.Labels)
		v.taints(gp+".taints", g.Taints)
	}
}

func (v *validator) kubeconfig(k *v1alpha1.KubeconfigRef, p string) {
	if k.SecretRef == nil && k.Context == "" {
		v.add(p, "required: secretRef (a kubeconfig Secret, for the controller) or context (a local kubeconfig context, for the CLI)")
	}
	v.secretRef(k.SecretRef, p+".secretRef")
	v.secretRef(k.TreeSecretRef, p+".treeSecretRef")
	if k.SecretRef != nil && k.TreeSecretRef != nil && k.SecretRef.Name == k.TreeSecretRef.Name && k.SecretRef.Namespace == k.TreeSecretRef.Namespace && k.SecretRef.Key == k.TreeSecretRef.Key {
		v.add(p+".treeSecretRef", "names the same Secret key as secretRef: the tree and the reconciler each need their own identity (leave treeSecretRef out to share one)")
	}
}

func (v *validator) secretRef(r *v1alpha1.SecretKeyRef, p string) {
	if r == nil {
		return
	}
	v.dns1123Subdomain(p+".name", r.Name)
	if r.Namespace != "" {
		v.dns1123Label(p+".namespace", r.Namespace)
	}
	if msgs := validation.IsConfigMapKey(r.Key); len(msgs) > 0 {
		v.add(p+".key", "%q is not a valid Secret key: %s", r.Key, msgs[0])
	}
}

func (v *validator) apiEndpoint(p, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil && strings.Contains(raw, "@"):
		v.add(p, "is not a URL (and must not carry credentials)")
	case err != nil:
		v.add(p, "%q is not a URL", raw)
	case u.User != nil:
		v.add(p, "carries credentials: the topology never holds credentials; give scheme, host and port only")
	case u.Scheme != "https":
		v.add(p, "%q must be an https URL", raw)
	case u.Host == "" || u.Hostname() == "":
		v.add(p, "%q has no host", raw)
	case u.RawQuery != "" || u.Fragment != "":
		v.add(p, "%q must not have a query or fragment", raw)
	}
}

func (v *validator) network() {
	if e := v.spec.Network.Encryption; e != "" {
		v.enum("spec.network.encryption", string(e), string(v1alpha1.EncryptionNone), string(v1alpha1.EncryptionWireGuard))
	}
	x, p := &v.spec.Network.VXLAN, "spec.network.vxlan"
	devs := []struct {
		name string
		d    v1alpha1.VXLANDevice
	}{{"bridge", x.Bridge}, {"local", x.Local}, {"bridge6", x.Bridge6}, {"local6", x.Local6}}
	vnis, ports := map[int32]string{}, map[int32]string{}
	for _, d := range devs {
		dp := p + "." + d.name
		if d.d.VNI < 1 || d.d.VNI > 1<<24-1 {
			v.add(dp+".vni", "%d is out of range 1 to 16777215", d.d.VNI)
		} else if other, dup := vnis[d.d.VNI]; dup {
			v.add(dp+".vni", "%d is already the VNI of %s.%s", d.d.VNI, p, other)
		} else {
			vnis[d.d.VNI] = d.name
		}
		if d.d.Port < 1 || d.d.Port > 65535 {
			v.add(dp+".port", "%d is out of range 1 to 65535", d.d.Port)
		} else if other, dup := ports[d.d.Port]; dup {
			v.add(dp+".port", "%d is already the port of %s.%s", d.d.Port, p, other)
		} else {
			ports[d.d.Port] = d.name
		}
	}
	if x.MTU != 0 && (x.MTU < 1280 || x.MTU > 9000) {
		v.add(p+".mtu", "%d is out of range 1280 to 9000 (or 0 to derive it from the interface)", x.MTU)
	}
}
