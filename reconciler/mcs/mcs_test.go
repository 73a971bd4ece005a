package mcs

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/testinfra/golden"
	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// testInput is Input as YAML.
type testInput struct {
	Topology string                 `json:"topology"`
	Domain   string                 `json:"domain"`
	Now      time.Time              `json:"now"`
	Expiry   string                 `json:"expiry"`
	Services []v1alpha1.ServiceSpec `json:"services"`
	Clusters []struct {
		Name        string            `json:"name"`
		GlobalCIDRs map[string]string `json:"globalCIDRs"`
		Facts       *Facts            `json:"facts"`
	} `json:"clusters"`
}

// testOutput is Output as YAML: objects as applied, export conditions.
type testOutput struct {
	Objects map[string][]map[string]any `json:"objects"`
	Exports map[string][]ExportStatus   `json:"exports"`
	Imports map[string][]Import         `json:"imports"`
}

// TestComputeGolden runs the sync over testdata/input.yaml (exports in three
// clusters: GlobalCIDR translation, port and type conflicts, an expired
// cluster, spec.services, a missing Service and namespace) and compares
// with testdata/output.golden.yaml; -update rewrites it.
func TestComputeGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "input.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ti testInput
	if err := yaml.UnmarshalStrict(data, &ti); err != nil {
		t.Fatal(err)
	}
	in := Input{Topology: ti.Topology, Domain: ti.Domain, Now: ti.Now, Services: ti.Services}
	if in.Expiry, err = time.ParseDuration(ti.Expiry); err != nil {
		t.Fatal(err)
	}
	for _, c := range ti.Clusters {
		in.Clusters = append(in.Clusters, Cluster{Name: c.Name, GlobalCIDRs: c.GlobalCIDRs, Facts: c.Facts})
	}
	out := Compute(in)
	to := testOutput{Objects: map[string][]map[string]any{}, Exports: out.Exports, Imports: out.Imports}
	for cluster, objs := range out.Objects {
		for _, o := range objs {
			m, err := apply.Clean(o)
			if err != nil {
				t.Fatal(err)
			}
			to.Objects[cluster] = append(to.Objects[cluster], m)
		}
	}
	got, err := yaml.Marshal(to)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "output.golden.yaml"), got)

	// Computing again with the exports and conditions just written changes
	// nothing.
	for i := range in.Clusters {
		f := in.Clusters[i].Facts
		for _, o := range out.Objects[in.Clusters[i].Name] {
			if o.GetObjectKind().GroupVersionKind().Kind == "ServiceExport" && !slices.ContainsFunc(f.Exports, func(e Export) bool { return e.Namespace == o.GetNamespace() && e.Name == o.GetName() }) {
				f.Exports = append(f.Exports, Export{Namespace: o.GetNamespace(), Name: o.GetName(), Created: in.Now, Owned: true})
			}
		}
		for j := range f.Exports {
			for _, st := range out.Exports[in.Clusters[i].Name] {
				if st.Namespace == f.Exports[j].Namespace && st.Name == f.Exports[j].Name {
					f.Exports[j].Conditions = st.Conditions
				}
			}
		}
	}
	in.Now = in.Now.Add(time.Minute)
	for cluster, sts := range Compute(in).Exports {
		for _, st := range sts {
			if st.Changed {
				t.Errorf("cluster %s: ServiceExport %s/%s changes again with its own conditions", cluster, st.Namespace, st.Name)
			}
		}
	}
}

func TestTranslate(t *testing.T) {
	m := map[string]string{"10.244.0.0/16": "100.64.0.0/16", "10.96.0.0/12": "172.32.0.0/12", "fd00:10::/64": "fd99:1::/64"}
	for in, want := range map[string]string{
		"10.244.3.7":   "100.64.3.7",
		"10.96.0.10":   "172.32.0.10",
		"10.111.2.3":   "172.47.2.3",
		"10.245.0.1":   "10.245.0.1", // unmapped
		"fd00:10::5":   "fd99:1::5",
		"fd00:11::5":   "fd00:11::5",
		"192.168.0.10": "192.168.0.10",
	} {
		a := mustAddr(t, in)
		if got := Translate(a, m).String(); got != want {
			t.Errorf("Translate(%s) = %s, want %s", in, got, want)
		}
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRecoveredCluster: a reconciler that (re)starts while cluster c is down
// keeps what a holds imported from c, addresses as they are (no second
// translation), until the expiry has passed since it started.
func TestRecoveredCluster(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	imported := discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{mcsv1a1.LabelServiceName: "web", mcsv1a1.LabelSourceCluster: "c"},
			Annotations: map[string]string{v1alpha1.AnnotationServiceIPs: "100.65.0.7"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"100.64.0.6"}}},
	}
	a := &Facts{ObservedAt: now, Namespaces: []string{"shop"},
		Imports:  []Import{{Namespace: "shop", Name: "web", Type: mcsv1a1.ClusterSetIP, Ports: []mcsv1a1.ServicePort{{Name: "http", Port: 80}}, Clusters: []string{"c"}}},
		Imported: []discoveryv1.EndpointSlice{imported}}
	b := &Facts{ObservedAt: now, Namespaces: []string{"shop"},
		Derived: []Derived{{Namespace: "shop", Import: "web", Name: DerivedName("web"), ClusterIPs: []string{"10.96.5.5"}}}}
	maps := map[string]string{"10.244.0.0/16": "100.64.0.0/16", "10.0.0.0/24": "100.65.0.0/24"}
	for _, tc := range []struct {
		started time.Time
		expiry  time.Duration
		want    []string // addresses of c's slice in b
	}{
		{now.Add(-time.Minute), 2 * time.Minute, []string{"100.64.0.6"}},
		{now.Add(-time.Minute), 30 * time.Second, nil},
	} {
		in := Input{Topology: "t", Now: now, Started: tc.started, Expiry: tc.expiry, Clusters: []Cluster{
			{Name: "a", Facts: a}, {Name: "b", Facts: b}, {Name: "c", GlobalCIDRs: maps},
		}}
		out := Compute(in)
		if in.Clusters[2].Facts != nil {
			t.Fatal("Compute changed its input")
		}
		var got []string
		var ips string
		sawImport := false
		for _, o := range out.Objects["b"] {
			switch o := o.(type) {
			case *discoveryv1.EndpointSlice:
				if o.Labels[mcsv1a1.LabelSourceCluster] == "c" {
					got = append(got, o.Endpoints[0].Addresses...)
					ips = o.Annotations[v1alpha1.AnnotationServiceIPs]
				}
			case *mcsv1a1.ServiceImport:
				// b's VIP: its derived Service's ClusterIP, whoever exports.
				sawImport = o.Name == "web" && slices.Equal(o.Spec.IPs, []string{"10.96.5.5"})
			}
		}
		if !slices.Equal(got, tc.want) || (tc.want != nil && ips != "100.65.0.7") || !sawImport {
			t.Errorf("started %s ago, expiry %s: c's addresses in b %v (service IPs %q), import kept %v; want %v",
				now.Sub(tc.started), tc.expiry, got, ips, sawImport, tc.want)
		}
	}
}

// TestDerivedService: the derived Service of a ClusterSetIP import follows
// the exports' IP families, never fixes a ClusterIP, and its name is a
// DNS-1035 label of at most 63 characters for any import name.
func TestDerivedService(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	facts := func(ips ...string) *Facts {
		return &Facts{ObservedAt: now, Namespaces: []string{"shop"},
			Exports:  []Export{{Namespace: "shop", Name: "web", Created: now}},
			Services: []Service{{Namespace: "shop", Name: "web", ClusterIPs: ips, Ports: []mcsv1a1.ServicePort{{Name: "http", Port: 80}}}}}
	}
	for _, tc := range []struct {
		name     string
		a, b     *Facts
		policy   corev1.IPFamilyPolicy
		families []corev1.IPFamily
	}{
		{"v4 only", facts("10.96.0.1"), facts("10.96.0.2"), corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{corev1.IPv4Protocol}},
		{"v6 only", facts("fd00::1"), &Facts{ObservedAt: now, Namespaces: []string{"shop"}}, corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{corev1.IPv6Protocol}},
		{"dual across clusters", facts("10.96.0.1"), facts("fd00::2"), corev1.IPFamilyPolicyPreferDualStack, nil},
		{"dual in one", facts("fd00::1", "10.96.0.1"), facts("10.96.0.2"), corev1.IPFamilyPolicyPreferDualStack, nil},
	} {
		out := Compute(Input{Topology: "t", Now: now, Clusters: []Cluster{{Name: "a", Facts: tc.a}, {Name: "b", Facts: tc.b}}})
		for _, cl := range []string{"a", "b"} {
			var svc *corev1.Service
			for _, o := range out.Objects[cl] {
				if s, ok := o.(*corev1.Service); ok {
					svc = s
				}
			}
			switch {
			case svc == nil:
				t.Errorf("%s: cluster %s has no derived Service", tc.name, cl)
			case svc.Name != DerivedName("web") || svc.Spec.ClusterIP != "" || len(svc.Spec.ClusterIPs) != 0 || svc.Spec.Selector != nil:
				t.Errorf("%s: cluster %s: derived Service %s %+v, want %s without ClusterIP and selector", tc.name, cl, svc.Name, svc.Spec, DerivedName("web"))
			case *svc.Spec.IPFamilyPolicy != tc.policy || !slices.Equal(svc.Spec.IPFamilies, tc.families):
				t.Errorf("%s: cluster %s: ipFamilyPolicy %s ipFamilies %v, want %s %v", tc.name, cl, *svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies, tc.policy, tc.families)
			}
		}
	}
	for _, name := range []string{"a", "web", strings.Repeat("x", 63), strings.Repeat("ab-", 21)} {
		d := DerivedName(name)
		if errs := validation.IsDNS1035Label(d); len(errs) > 0 || len(d) > validation.DNS1035LabelMaxLength {
			t.Errorf("DerivedName(%q) = %q (%d characters): %v", name, d, len(d), errs)
		}
	}
	if DerivedName(strings.Repeat("x", 50)) == DerivedName(strings.Repeat("x", 51)) {
		t.Error("two long names that share their first 46 characters derive the same name")
	}
}
