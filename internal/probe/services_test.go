package probe

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

func vip(importer, exporter, err string, addrs ...string) ServiceVIP {
	v := ServiceVIP{Importer: importer, Exporter: exporter, Service: "kosmos-probe/kosmos-probe-r-" + exporter, Err: err}
	for _, a := range addrs {
		v.Addrs = append(v.Addrs, netip.MustParseAddr(a))
	}
	return v
}

func TestServiceName(t *testing.T) {
	long := strings.Repeat("c", 70)
	for _, tc := range []struct{ run, cluster, want string }{
		{"1a2b3c4d", "member-a", "kosmos-probe-1a2b3c4d-member-a"},
		{"1a2b3c4d", long, ""},
		{"1a2b3c4d", strings.Repeat("x", 41) + "-" + long, ""},
		{strings.Repeat("f", 60), "a", ""},
		{strings.Repeat("f", 100), long, ""},
		{strings.Repeat("f", 45), "member-a", ""},
	} {
		got := ServiceName(tc.run, tc.cluster)
		if tc.want != "" && got != tc.want {
			t.Errorf("ServiceName(%q, %q) = %q, want %q", tc.run, tc.cluster, got, tc.want)
		}
		if errs := validation.IsDNS1035Label(got); len(errs) > 0 {
			t.Errorf("ServiceName(%q, %q) = %q: not a DNS-1035 label: %v", tc.run, tc.cluster, got, errs)
		}
	}
	if ServiceName(strings.Repeat("f", 60), "a") == ServiceName(strings.Repeat("f", 60), "b") {
		t.Error("a long run ID gives two clusters one service name")
	}
	if ServiceName("r", long) == ServiceName("r", long+"d") {
		t.Error("two long cluster names give one service name")
	}
}

func TestPlanServices(t *testing.T) {
	eps := []Endpoint{
		ep("a", PodNet, "10.1.0.2", "fd01::2"), ep("a", HostNet, "192.168.0.1"),
		ep("b", PodNet, "10.2.0.2"), ep("b", HostNet, "192.168.0.2"),
	}
	tests := []struct {
		name       string
		vips       []ServiceVIP
		protos     []Proto
		want, fail []string
	}{{
		name:   "from every network of the importer, TCP and UDP, never ICMP",
		vips:   []ServiceVIP{vip("a", "b", "", "10.0.1.7"), vip("b", "a", "", "10.0.2.9")},
		protos: Protos,
		want: []string{
			"a/pod→b tcp:10.0.1.7 kosmos-probe/kosmos-probe-r-b", "a/pod→b udp:10.0.1.7 kosmos-probe/kosmos-probe-r-b",
			"a/host→b tcp:10.0.1.7 kosmos-probe/kosmos-probe-r-b", "a/host→b udp:10.0.1.7 kosmos-probe/kosmos-probe-r-b",
			"b/pod→a tcp:10.0.2.9 kosmos-probe/kosmos-probe-r-a", "b/pod→a udp:10.0.2.9 kosmos-probe/kosmos-probe-r-a",
			"b/host→a tcp:10.0.2.9 kosmos-probe/kosmos-probe-r-a", "b/host→a udp:10.0.2.9 kosmos-probe/kosmos-probe-r-a",
		},
	}, {
		name:   "a VIP of a family the source lacks is left out",
		vips:   []ServiceVIP{vip("a", "b", "", "10.0.1.7", "fd00:1::7")},
		protos: []Proto{TCP},
		want:   []string{"a/pod→b tcp:10.0.1.7 kosmos-probe/kosmos-probe-r-b", "a/pod→b tcp:fd00:1::7 kosmos-probe/kosmos-probe-r-b", "a/host→b tcp:10.0.1.7 kosmos-probe/kosmos-probe-r-b"},
	}, {
		name:   "no import: a failed result per source network, naming the pair",
		vips:   []ServiceVIP{vip("a", "b", "no ServiceImport kosmos-probe/kosmos-probe-r-b in a")},
		protos: Protos,
		fail:   []string{"a/pod→b kosmos-probe/kosmos-probe-r-b: no ServiceImport kosmos-probe/kosmos-probe-r-b in a", "a/host→b kosmos-probe/kosmos-probe-r-b: no ServiceImport kosmos-probe/kosmos-probe-r-b in a"},
	}, {
		name:   "ICMP only: nothing to probe",
		vips:   []ServiceVIP{vip("a", "b", "", "10.0.1.7")},
		protos: []Proto{ICMP},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probes, failed := PlanServices(eps, tc.vips, tc.protos)
			var got []string
			for _, p := range probes {
				if p.To.Name != p.To.Cluster+"-pod" {
					t.Errorf("probe %v: To is %+v, want the exporter's pod endpoint", p, p.To)
				}
				got = append(got, fmt.Sprintf("%s/%s→%s %s:%s %s", p.From.Cluster, p.From.Net, p.To.Cluster, p.Proto, p.Addr, p.Service))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("probes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			var gotFail []string
			for _, r := range failed {
				gotFail = append(gotFail, fmt.Sprintf("%s/%s→%s %s: %s", r.Probe.From.Cluster, r.Probe.From.Net, r.Probe.To.Cluster, r.Probe.Service, r.Err))
			}
			if strings.Join(gotFail, "\n") != strings.Join(tc.fail, "\n") {
				t.Errorf("failed:\n%s\nwant:\n%s", strings.Join(gotFail, "\n"), strings.Join(tc.fail, "\n"))
			}
		})
	}
}

func TestServicesRow(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "kosmos-probe-r-a", errors.New("no rule"))
	vips := []ServiceVIP{vip("a", "b", "", "10.0.1.7"), vip("b", "a", "no ServiceImport")}
	for _, tc := range []struct {
		name         string
		noMCS        []string
		err          error
		result, want string
	}{
		{"imports counted", nil, nil, "PASS", "1 of 2 imports of the probe services have a ClusterSetIP"},
		{"clusters without MCS named", []string{"c", "d"}, nil, "SKIP", "no MCS API (ServiceExport) in c, d: install the MCS CRDs (kustomize/base/crds)"},
		{"errors fail", []string{"c"}, errors.New("cluster a: create Service: forbidden"), "FAIL", "cluster a: create Service: forbidden"},
		{"only Forbidden (the Role before --services): a hint", nil, errors.Join(fmt.Errorf("cluster a: create Service: %w", forbidden), fmt.Errorf("cluster b: create Service: %w", forbidden)), "SKIP", "reapply kustomize/base/probe"},
		{"Forbidden and another error fail", nil, errors.Join(fmt.Errorf("cluster a: %w", forbidden), errors.New("cluster b: timeout")), "FAIL", "cluster b: timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := ServicesRow(vips, tc.noMCS, tc.err)
			if row.Name != "probe services" || row.Result != tc.result || !strings.Contains(row.Detail, tc.want) {
				t.Errorf("row %+v, want %s containing %q", row, tc.result, tc.want)
			}
		})
	}
}

// TestChecksServiceRows: service probes get rows of their own, after the
// pod rows of the same pair, and the summary names broken service pairs.
func TestChecksServiceRows(t *testing.T) {
	a, b := ep("a", PodNet, "10.1.0.2"), ep("b", PodNet, "10.2.0.2")
	podProbe := Probe{From: a, To: b, Addr: netip.MustParseAddr("10.2.0.2"), Proto: TCP}
	svcProbe := Probe{From: a, To: b, Addr: netip.MustParseAddr("10.0.1.7"), Proto: TCP, Service: "kosmos-probe/x"}
	svcBack := Probe{From: b, To: a, Addr: netip.MustParseAddr("10.0.2.9"), Proto: UDP, Service: "kosmos-probe/y"}
	rows := Checks([]Result{
		{Probe: podProbe},
		{Probe: svcProbe, Err: "i/o timeout"},
		{Probe: svcBack},
	})
	want := []string{
		"probe a/pod-net → b PASS tcp 10.2.0.2",
		"probe service a/pod-net → b FAIL tcp 10.0.1.7: i/o timeout",
		"probe service b/pod-net → a PASS udp 10.0.2.9",
		"probe broken pairs FAIL service a/pod-net → b",
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.Name+" "+r.Result+" "+r.Detail)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
