package translate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func readPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "pods", name))
	if err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// TestMemberPod renders the member copy of a host pod in both tree modes,
// with and without a host API endpoint, against reviewed golden files.
func TestMemberPod(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    PodOptions
	}{
		{"aggregate", PodOptions{VirtualNode: "kosmos-member-a", HostAPIHost: "10.0.0.10", HostAPIPort: "6443", MemberTolerations: webTolerations}},
		{"onetoone", PodOptions{VirtualNode: "kosmos-member-b.n1", MemberNode: "n1", MemberTolerations: webTolerations}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hp := readPod(t, "web.yaml")
			before, _ := json.Marshal(hp)
			mp, err := MemberPod(hp, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if after, _ := json.Marshal(hp); string(after) != string(before) {
				t.Error("MemberPod modified the host pod")
			}
			got, err := yaml.Marshal(mp)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "pods", "web-"+tc.name+".golden.yaml"), got)
		})
	}
}

func TestMemberPodRejectsBadAnnotation(t *testing.T) {
	for _, raw := range []string{`{`, `{"nodeSelectr":{}}`, `[]`} {
		hp := readPod(t, "web.yaml")
		hp.Annotations[AnnotationMemberScheduling] = raw
		if _, err := MemberPod(hp, PodOptions{}); err == nil {
			t.Errorf("annotation %q accepted", raw)
		}
	}
}

func TestMemberPodRefusesAudienceTokens(t *testing.T) {
	hp := readPod(t, "web.yaml")
	hp.Spec.Volumes = append(hp.Spec.Volumes, corev1.Volume{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", Path: "token"}}}}}})
	if _, err := MemberPod(hp, PodOptions{HostAPIHost: "10.0.0.10", HostAPIPort: "6443", MemberTolerations: webTolerations}); err == nil {
		t.Error("a token for another audience was carried into the member")
	}
	if NeedsHostToken(hp, PodOptions{}) || !NeedsHostToken(hp, PodOptions{HostAPIHost: "h"}) {
		t.Error("NeedsHostToken")
	}
}

func TestDepsOf(t *testing.T) {
	got := DepsOf(readPod(t, "web.yaml"))
	want := Deps{
		ConfigMaps:      []string{"web-config"},
		Secrets:         []string{"db", "registry", "tls"},
		PVCs:            []string{"web-data"},
		ServiceAccounts: []string{"web"},
	}
	if g, w := mustJSON(got), mustJSON(want); g != w {
		t.Errorf("DepsOf = %s, want %s", g, w)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestUpdatePod(t *testing.T) {
	hp := readPod(t, "web.yaml")
	want, err := MemberPod(hp, PodOptions{VirtualNode: "v", MemberTolerations: webTolerations})
	if err != nil {
		t.Fatal(err)
	}
	have := want.DeepCopy()
	have.Spec.NodeName = "member-node-3"                   // set by the member's scheduler: kept
	have.Labels["sidecar.istio.io/inject"] = "true"        // added by the member's admission: kept
	have.Spec.Containers[0].Image = "mirror.local/web:1.2" // rewritten by a member webhook: not undone
	if _, changed := UpdatePod(want, have); changed {
		t.Error("a pod the host did not change was updated (the member's own changes undone)")
	}
	hp.Spec.Containers[0].Image = "shop/web:1.3"
	hp.Labels["track"] = "canary"
	hp.Spec.Tolerations = append(hp.Spec.Tolerations, corev1.Toleration{Key: "spot", Operator: corev1.TolerationOpExists})
	if want, err = MemberPod(hp, PodOptions{VirtualNode: "v", MemberTolerations: slices.Concat(webTolerations, []string{"spot"})}); err != nil {
		t.Fatal(err)
	}
	out, changed := UpdatePod(want, have)
	if !changed || out.Spec.Containers[0].Image != "shop/web:1.3" || out.Labels["track"] != "canary" || len(out.Spec.Tolerations) != len(want.Spec.Tolerations) {
		t.Errorf("update not carried: changed=%v image=%s labels=%v tolerations=%v", changed, out.Spec.Containers[0].Image, out.Labels, out.Spec.Tolerations)
	}
	if out.Spec.NodeName != "member-node-3" || out.Labels["sidecar.istio.io/inject"] != "true" || have.Spec.Containers[0].Image != "mirror.local/web:1.2" {
		t.Error("UpdatePod lost a member-side field or modified its input")
	}
	if _, again := UpdatePod(want, out); again {
		t.Error("the update is not recorded: it would be written again")
	}
}

func TestHostStatus(t *testing.T) {
	net, err := ParseMemberNetwork(&v1alpha1.ClusterObjectSpec{PodCIDRs: []string{"10.244.0.0/16", "fd00::/64"}, GlobalCIDRs: map[string]string{"10.244.0.0/16": "100.64.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	mp := &corev1.Pod{Status: corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "10.244.3.9", PodIPs: []corev1.PodIP{{IP: "10.244.3.9"}, {IP: "fd00::9"}}, HostIP: "192.168.2.11",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Reason: "member"}},
	}}
	have := &corev1.PodStatus{Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionFalse},
		{Type: "example.com/gate", Status: corev1.ConditionTrue},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Reason: "host"},
	}, NominatedNodeName: "x"}
	st, refused := HostStatus(mp, have, net)
	if len(refused) != 0 {
		t.Errorf("refused %v", refused)
	}
	if st.Conditions[len(st.Conditions)-1].Reason != "host" {
		t.Errorf("the member's PodScheduled replaced the host's: %+v", st.Conditions)
	}
	st.Conditions = st.Conditions[:2]
	mp.Status.Conditions[1] = corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable"}
	if got, _ := HostStatus(mp, have, net); got.Conditions[1].Reason != "Unschedulable" {
		t.Errorf("the member's failure to place the pod is hidden: %+v", got.Conditions)
	}
	if st.PodIP != "100.64.3.9" || st.PodIPs[0].IP != "100.64.3.9" || st.PodIPs[1].IP != "fd00::9" || st.HostIP != "192.168.2.11" {
		t.Errorf("addresses: %+v", st)
	}
	if len(st.Conditions) != 2 || st.Conditions[0].Status != corev1.ConditionTrue || st.Conditions[1].Type != "example.com/gate" {
		t.Errorf("conditions: %+v", st.Conditions)
	}
	if mp.Status.PodIP != "10.244.3.9" {
		t.Error("HostStatus modified the member pod")
	}
}

// TestMemberPodRefusesReservedNames: a pod that names a Secret or
// ConfigMap under the token Secrets' prefix, in any way, is refused.
func TestMemberPodRefusesReservedNames(t *testing.T) {
	for name, edit := range map[string]func(p *corev1.Pod){
		"secret volume": func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: TokenSecretPrefix + "web"}}})
		},
		"configmap volume": func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: TokenSecretPrefix + "x"}}}})
		},
		"envFrom secret": func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = append(p.Spec.Containers[0].EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: TokenSecretPrefix + "web"}}})
		},
		"image pull secret": func(p *corev1.Pod) {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: TokenSecretPrefix + "pull"})
		},
	} {
		hp := readPod(t, "web.yaml")
		edit(hp)
		if _, err := MemberPod(hp, PodOptions{MemberTolerations: webTolerations}); err == nil {
			t.Errorf("%s: a reserved name was accepted", name)
		}
	}
	if _, err := MemberPod(readPod(t, "web.yaml"), PodOptions{MemberTolerations: webTolerations}); err != nil {
		t.Errorf("the plain pod was refused: %v", err)
	}
}

// TestHostStatusAddresses: only pod IPs the member's pod CIDRs hold reach
// the host (translated), and only unicast host IPs; the rest is refused.
func TestHostStatusAddresses(t *testing.T) {
	spec := &v1alpha1.ClusterObjectSpec{PodCIDRs: []string{"10.244.0.0/16", "fd00:10::/56"}, GlobalCIDRs: map[string]string{"10.244.0.0/16": "100.64.0.0/16"}}
	net, err := ParseMemberNetwork(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		podIPs          []string
		podIP, hostIP   string
		wantIPs         []string
		wantIP, wantHIP string
		refused         []string
	}{
		{name: "inside, translated", podIPs: []string{"10.244.3.9", "fd00:10::9"}, hostIP: "192.168.2.11",
			wantIPs: []string{"100.64.3.9", "fd00:10::9"}, wantIP: "100.64.3.9", wantHIP: "192.168.2.11"},
		{name: "a Service IP of the host", podIPs: []string{"10.96.0.1"}, hostIP: "192.168.2.11",
			wantHIP: "192.168.2.11", refused: []string{"10.96.0.1"}},
		{name: "the global range itself is not the member's to claim", podIPs: []string{"100.64.3.9"},
			refused: []string{"100.64.3.9"}},
		{name: "one family out, the other kept", podIPs: []string{"8.8.8.8", "fd00:10::9"},
			wantIPs: []string{"fd00:10::9"}, wantIP: "fd00:10::9", refused: []string{"8.8.8.8"}},
		{name: "podIP alone (no podIPs)", podIP: "10.244.0.7", wantIPs: []string{"100.64.0.7"}, wantIP: "100.64.0.7"},
		{name: "loopback host IP", podIPs: []string{"10.244.0.7"}, hostIP: "127.0.0.1",
			wantIPs: []string{"100.64.0.7"}, wantIP: "100.64.0.7", refused: []string{"127.0.0.1"}},
		{name: "not an address", podIP: "nowhere", hostIP: "0.0.0.0", refused: []string{"nowhere", "0.0.0.0"}},
		{name: "nothing reported yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp := &corev1.Pod{Status: corev1.PodStatus{PodIP: tc.podIP, HostIP: tc.hostIP}}
			for _, ip := range tc.podIPs {
				mp.Status.PodIPs = append(mp.Status.PodIPs, corev1.PodIP{IP: ip})
			}
			if len(tc.podIPs) > 0 {
				mp.Status.PodIP = tc.podIPs[0]
			}
			st, refused := HostStatus(mp, &corev1.PodStatus{}, net)
			var ips []string
			for _, ip := range st.PodIPs {
				ips = append(ips, ip.IP)
			}
			if !slices.Equal(ips, tc.wantIPs) || st.PodIP != tc.wantIP || st.HostIP != tc.wantHIP || !slices.Equal(refused, tc.refused) {
				t.Errorf("podIPs %v podIP %q hostIP %q refused %v; want %v %q %q %v", ips, st.PodIP, st.HostIP, refused, tc.wantIPs, tc.wantIP, tc.wantHIP, tc.refused)
			}
		})
	}
	// Without pod CIDRs, no pod IP is vouched for.
	none, _ := ParseMemberNetwork(&v1alpha1.ClusterObjectSpec{})
	if st, refused := HostStatus(&corev1.Pod{Status: corev1.PodStatus{PodIP: "10.244.0.7", PodIPs: []corev1.PodIP{{IP: "10.244.0.7"}}}}, &corev1.PodStatus{}, none); st.PodIP != "" || len(refused) != 1 {
		t.Errorf("without pod CIDRs: podIP %q refused %v", st.PodIP, refused)
	}
}

// TestMemberScheduling: what the annotation may ask of the member's
// scheduler, and which tolerations of the host pod's spec reach the copy.
func TestMemberScheduling(t *testing.T) {
	allowed := []string{"dedicated", "gpu"}
	for _, tc := range []struct {
		name, annotation string
		ok               bool
	}{
		{"listed key", `{"tolerations":[{"key":"dedicated","value":"batch","effect":"NoSchedule"}]}`, true},
		{"listed key, any effect", `{"tolerations":[{"key":"gpu","operator":"Exists"}]}`, true},
		{"key not listed", `{"tolerations":[{"key":"storage","operator":"Exists"}]}`, false},
		{"empty-key wildcard", `{"tolerations":[{"operator":"Exists"}]}`, false},
		{"control-plane taint", `{"tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists","effect":"NoSchedule"}]}`, false},
		{"master taint", `{"tolerations":[{"key":"node-role.kubernetes.io/master","operator":"Exists"}]}`, false},
		{"NoExecute of a system taint", `{"tolerations":[{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute"}]}`, false},
		{"plain node selector", `{"nodeSelector":{"pool":"burst"}}`, true},
		{"node selector on control planes", `{"nodeSelector":{"node-role.kubernetes.io/control-plane":""}}`, false},
		{"required affinity to control planes", `{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"node-role.kubernetes.io/master","operator":"Exists"}]}]}}}}`, false},
		{"preferred affinity to control planes", `{"affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":1,"preference":{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"In","values":[""]}]}}]}}}`, false},
		{"affinity away from control planes", `{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"DoesNotExist"}]}]}}}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hp := readPod(t, "web.yaml")
			hp.Annotations[AnnotationMemberScheduling] = tc.annotation
			_, err := MemberPod(hp, PodOptions{MemberTolerations: allowed})
			if (err == nil) != tc.ok {
				t.Errorf("accepted %v, want %v (%v)", err == nil, tc.ok, err)
			}
		})
	}
	// The host pod's own tolerations: only allowed keys reach the copy.
	hp := readPod(t, "web.yaml")
	delete(hp.Annotations, AnnotationMemberScheduling)
	hp.Spec.Tolerations = append(hp.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists},
		corev1.Toleration{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists})
	mp, err := MemberPod(hp, PodOptions{MemberTolerations: []string{"gpu"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(mp.Spec.Tolerations) != 1 || mp.Spec.Tolerations[0].Key != "gpu" {
		t.Errorf("tolerations in the member: %+v", mp.Spec.Tolerations)
	}
	if mp, _ := MemberPod(hp, PodOptions{}); len(mp.Spec.Tolerations) != 0 {
		t.Errorf("without an allow-list, tolerations reached the member: %+v", mp.Spec.Tolerations)
	}
}

// webTolerations are the taint keys web.yaml tolerates (spec and
// annotation), as its member would allow them.
var webTolerations = []string{"dedicated", "gpu"}

// TestTokenSecretName: one token Secret per host pod, under the reserved
// prefix, whatever the account.
func TestTokenSecretName(t *testing.T) {
	a, b := TokenSecretName("6f1c2d4e-0000-4000-8000-000000000001"), TokenSecretName("6f1c2d4e-0000-4000-8000-000000000002")
	if a == b || !Reserved(a) || !Reserved(b) || len(a) > 63 {
		t.Errorf("token Secret names %q and %q", a, b)
	}
}

// TestMemberPodPinned: a OneToOne copy goes past the member's scheduler,
// so the taints of its member node are checked here.
func TestMemberPodPinned(t *testing.T) {
	for _, tc := range []struct {
		name  string
		node  string
		taint corev1.Taint
		ok    bool
	}{
		{"control plane", "n1", corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}, false},
		{"not tolerated NoExecute", "n1", corev1.Taint{Key: "storage", Value: "x", Effect: corev1.TaintEffectNoExecute}, false},
		{"tolerated by the annotation", "n1", corev1.Taint{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}, true},
		{"other value", "n1", corev1.Taint{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}, false},
		{"tolerated by the spec", "n1", corev1.Taint{Key: "gpu", Value: "a100", Effect: corev1.TaintEffectNoExecute}, true},
		{"only preferred", "n1", corev1.Taint{Key: "storage", Effect: corev1.TaintEffectPreferNoSchedule}, true},
		{"a condition of the node", "n1", corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}, true},
		{"aggregate: the member's scheduler decides", "", corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MemberPod(readPod(t, "web.yaml"), PodOptions{MemberNode: tc.node, MemberTolerations: webTolerations, MemberNodeTaints: []corev1.Taint{tc.taint}})
			if (err == nil) != tc.ok {
				t.Errorf("accepted %v, want %v (%v)", err == nil, tc.ok, err)
			}
		})
	}
}
