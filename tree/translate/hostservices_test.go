package translate

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHostDNS: copies that resolve through the cluster DNS resolve at the
// host's, with the search path the host would give them (the pod's own
// additions kept after it); pods that chose otherwise keep their choice.
func TestHostDNS(t *testing.T) {
	d := &HostDNS{Nameserver: "10.96.0.10", ClusterDomain: "cluster.local"}
	one, five := "1", "5"
	host := []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	for _, tc := range []struct {
		name     string
		policy   corev1.DNSPolicy
		hostNet  bool
		own      *corev1.PodDNSConfig
		ann      map[string]string
		d        *HostDNS
		want     *corev1.PodDNSConfig // nil: unchanged
		wantNone bool
	}{
		{name: "default policy", d: d, want: &corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10"}, Searches: host,
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}}}},
		{name: "ClusterFirst with own config", policy: corev1.DNSClusterFirst, d: d,
			own: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"corp.example", "svc.cluster.local"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &one}, {Name: "edns0"}}},
			want: &corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10", "1.1.1.1"}, Searches: append(append([]string{}, host...), "corp.example"),
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &one}, {Name: "edns0"}}}},
		{name: "ClusterFirstWithHostNet", policy: corev1.DNSClusterFirstWithHostNet, hostNet: true, d: d,
			want: &corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10"}, Searches: host, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}}}},
		{name: "host network, ClusterFirst: the node's resolver", policy: corev1.DNSClusterFirst, hostNet: true, d: d},
		{name: "Default", policy: corev1.DNSDefault, d: d},
		{name: "None", policy: corev1.DNSNone, own: &corev1.PodDNSConfig{Nameservers: []string{"8.8.8.8"}}, d: d},
		{name: "annotation keeps the member's", d: d, ann: map[string]string{AnnotationMemberDNS: "member"}},
		{name: "switched off", d: nil},
		{name: "other domain", d: &HostDNS{Nameserver: "10.0.0.10", ClusterDomain: "corp.internal"},
			want: &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.10"}, Searches: []string{"shop.svc.corp.internal", "svc.corp.internal", "corp.internal"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}}}},
	} {
		spec := &corev1.PodSpec{DNSPolicy: tc.policy, HostNetwork: tc.hostNet, DNSConfig: tc.own.DeepCopy()}
		useHostDNS(spec, "shop", tc.ann, tc.d)
		if tc.want == nil {
			if spec.DNSPolicy != tc.policy || !reflect.DeepEqual(spec.DNSConfig, tc.own) {
				t.Errorf("%s: changed to %s %+v", tc.name, spec.DNSPolicy, spec.DNSConfig)
			}
			continue
		}
		if spec.DNSPolicy != corev1.DNSNone || !reflect.DeepEqual(spec.DNSConfig, tc.want) {
			t.Errorf("%s: %s %+v, want None %+v", tc.name, spec.DNSPolicy, spec.DNSConfig, tc.want)
		}
	}
}

// TestHostServiceEnv: a copy gets the host's service variables of its
// namespace (its own variables win), and no member service links.
func TestHostServiceEnv(t *testing.T) {
	svc := func(ns, name, ip string, port int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: []corev1.ServicePort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP}}}}
	}
	services := []*corev1.Service{svc("shop", "backend", "10.96.5.5", 8080), svc("shop", "db", "None", 5432),
		svc("other", "cache", "10.96.6.6", 6379), svc("default", "kubernetes", "10.96.0.1", 443)}
	env := ServiceEnv("shop", services)
	names := map[string]string{}
	for _, e := range env {
		names[e.Name] = e.Value
	}
	if names["BACKEND_SERVICE_HOST"] != "10.96.5.5" || names["BACKEND_SERVICE_PORT"] != "8080" || names["BACKEND_SERVICE_PORT_HTTP"] != "8080" ||
		names["BACKEND_PORT"] != "tcp://10.96.5.5:8080" {
		t.Errorf("backend variables %v", names)
	}
	for _, n := range []string{"DB_SERVICE_HOST", "CACHE_SERVICE_HOST", "KUBERNETES_SERVICE_HOST"} {
		if _, ok := names[n]; ok {
			t.Errorf("%s set (headless, another namespace, or the API server's)", n)
		}
	}
	if got := ServiceEnv("default", services); len(got) != 0 {
		t.Errorf("default namespace: %v", got)
	}

	hp := readPod(t, "web.yaml")
	hp.Namespace = "shop"
	hp.Spec.Containers[0].Env = append(hp.Spec.Containers[0].Env, corev1.EnvVar{Name: "BACKEND_SERVICE_HOST", Value: "mine"})
	mp, err := MemberPod(hp, PodOptions{VirtualNode: "kosmos-a", MemberTolerations: webTolerations, HostServiceLinks: true, HostServiceEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	if mp.Spec.EnableServiceLinks == nil || *mp.Spec.EnableServiceLinks {
		t.Error("the member's service links stay on")
	}
	got := map[string][]string{}
	for _, e := range mp.Spec.Containers[0].Env {
		got[e.Name] = append(got[e.Name], e.Value)
	}
	if !reflect.DeepEqual(got["BACKEND_SERVICE_HOST"], []string{"mine"}) || !reflect.DeepEqual(got["BACKEND_SERVICE_PORT"], []string{"8080"}) {
		t.Errorf("copy's env %v", got)
	}
	off := false
	hp.Spec.EnableServiceLinks = &off
	mp, err = MemberPod(hp, PodOptions{VirtualNode: "kosmos-a", MemberTolerations: webTolerations, HostServiceLinks: true, HostServiceEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range mp.Spec.Containers[0].Env {
		if e.Name == "BACKEND_SERVICE_PORT" {
			t.Error("service links off, yet the host's variables were added")
		}
	}
}
