package probe

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func topo(clusters ...v1alpha1.ClusterSpec) *v1alpha1.KosmosTopology {
	t := &v1alpha1.KosmosTopology{}
	t.Name = "t"
	t.Spec.Clusters = clusters
	return t
}

func cluster(name string, global map[string]string) v1alpha1.ClusterSpec {
	c := v1alpha1.ClusterSpec{Name: name}
	c.Network.GlobalCIDRs = global
	return c
}

func ep(cluster string, net Net, addrs ...string) Endpoint {
	e := Endpoint{Cluster: cluster, Net: net, Name: cluster + "-" + string(net)}
	for _, a := range addrs {
		e.Addrs = append(e.Addrs, netip.MustParseAddr(a))
	}
	return e
}

func probeNames(ps []Probe) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s/%s→%s %s:%s", p.From.Cluster, p.From.Net, p.To.Cluster, p.Proto, p.Addr))
	}
	return strings.Join(out, "\n")
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name   string
		topo   *v1alpha1.KosmosTopology
		eps    []Endpoint
		protos []Proto
		want   []string
	}{{
		name:   "both ways, from pod and host network, to pods only",
		topo:   topo(cluster("a", nil), cluster("b", nil)),
		eps:    []Endpoint{ep("a", PodNet, "10.1.0.2"), ep("a", HostNet, "192.168.0.1"), ep("b", PodNet, "10.2.0.2"), ep("b", HostNet, "192.168.0.2")},
		protos: []Proto{TCP},
		want: []string{
			"a/pod→b tcp:10.2.0.2", "a/host→b tcp:10.2.0.2",
			"b/pod→a tcp:10.1.0.2", "b/host→a tcp:10.1.0.2",
		},
	}, {
		name:   "global address where the receiver maps its pod range",
		topo:   topo(cluster("a", nil), cluster("b", map[string]string{"10.244.0.0/16": "100.64.0.0/16"})),
		eps:    []Endpoint{ep("a", PodNet, "10.1.0.2"), ep("b", PodNet, "10.244.1.2")},
		protos: []Proto{ICMP},
		want:   []string{"a/pod→b icmp:100.64.1.2", "b/pod→a icmp:10.1.0.2"},
	}, {
		name:   "IPv6 only where both have it; every protocol",
		topo:   topo(cluster("a", nil), cluster("b", nil)),
		eps:    []Endpoint{ep("a", PodNet, "10.1.0.2"), ep("b", PodNet, "10.2.0.2", "fd00::2")},
		protos: Protos,
		want: []string{
			"a/pod→b icmp:10.2.0.2", "a/pod→b tcp:10.2.0.2", "a/pod→b udp:10.2.0.2",
			"b/pod→a icmp:10.1.0.2", "b/pod→a tcp:10.1.0.2", "b/pod→a udp:10.1.0.2",
		},
	}, {
		name:   "a cluster without endpoints is in no pair; endpoints of unknown clusters are ignored",
		topo:   topo(cluster("a", nil), cluster("b", nil), cluster("c", nil)),
		eps:    []Endpoint{ep("a", PodNet, "10.1.0.2"), ep("c", PodNet, "10.3.0.2"), ep("x", PodNet, "10.9.0.2")},
		protos: []Proto{UDP},
		want:   []string{"a/pod→c udp:10.3.0.2", "c/pod→a udp:10.1.0.2"},
	}, {
		name: "one cluster: nothing to probe",
		topo: topo(cluster("a", nil)),
		eps:  []Endpoint{ep("a", PodNet, "10.1.0.2")}, protos: Protos,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := probeNames(Plan(tt.topo, tt.eps, tt.protos))
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("Plan:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func res(from, to string, net Net, proto Proto, addr, err, skip string) Result {
	return Result{Probe: Probe{From: ep(from, net), To: ep(to, PodNet), Addr: netip.MustParseAddr(addr), Proto: proto}, Err: err, Skip: skip}
}

func table(cs []check.Check) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+" | "+c.Result+" | "+c.Detail)
	}
	return strings.Join(out, "\n")
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name    string
		results []Result
		want    []string
	}{{
		name:    "nothing probed",
		results: nil,
		want:    []string{"probe broken pairs | PASS | none of 0"},
	}, {
		name: "all answered",
		results: []Result{
			res("a", "b", PodNet, TCP, "10.2.0.2", "", ""), res("a", "b", PodNet, UDP, "10.2.0.2", "", ""),
			res("b", "a", HostNet, TCP, "10.1.0.2", "", ""),
		},
		want: []string{
			"probe a/pod-net → b | PASS | tcp 10.2.0.2, udp 10.2.0.2",
			"probe b/host-net → a | PASS | tcp 10.1.0.2",
			"probe broken pairs | PASS | none of 2",
		},
	}, {
		name: "one protocol fails: the pair is broken and named",
		results: []Result{
			res("a", "b", PodNet, TCP, "10.2.0.2", "", ""), res("a", "b", PodNet, UDP, "10.2.0.2", "no echo", ""),
			res("b", "a", PodNet, TCP, "10.1.0.2", "", ""),
			res("b", "a", HostNet, ICMP, "10.1.0.2", "no echo reply", ""),
		},
		want: []string{
			"probe a/pod-net → b | FAIL | udp 10.2.0.2: no echo",
			"probe b/pod-net → a | PASS | tcp 10.1.0.2",
			"probe b/host-net → a | FAIL | icmp 10.1.0.2: no echo reply",
			"probe broken pairs | FAIL | a/pod-net → b, b/host-net → a",
		},
	}, {
		name: "ICMP not permitted: skipped, the rest decides; only skipped: SKIP",
		results: []Result{
			res("a", "b", PodNet, ICMP, "10.2.0.2", "", "ICMP not permitted here"), res("a", "b", PodNet, TCP, "10.2.0.2", "", ""),
			res("b", "a", PodNet, ICMP, "10.1.0.2", "", "ICMP not permitted here"),
		},
		want: []string{
			"probe a/pod-net → b | PASS | tcp 10.2.0.2 (skipped icmp 10.2.0.2: ICMP not permitted here)",
			"probe b/pod-net → a | SKIP | icmp 10.1.0.2: ICMP not permitted here",
			"probe broken pairs | PASS | none of 2",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := table(Checks(tt.results)), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("Checks:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestTargetsAndAnswers(t *testing.T) {
	for _, bad := range []string{"", "tcp", "http:10.0.0.1", "tcp:10.0.0", "udp:[::1]"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	for _, good := range []string{"tcp:10.0.0.1", "udp:fd00::2", "icmp:192.168.1.1"} {
		tg, err := ParseTarget(good)
		if err != nil || tg.String() != good {
			t.Errorf("ParseTarget(%q) = %v, %v", good, tg, err)
		}
	}
	ps := []Probe{
		{Proto: TCP, Addr: netip.MustParseAddr("10.2.0.2")},
		{Proto: ICMP, Addr: netip.MustParseAddr("10.2.0.2")},
		{Proto: UDP, Addr: netip.MustParseAddr("10.2.0.2")},
	}
	out := `{"t":"tcp:10.2.0.2"}
not json
{"t":"icmp:10.2.0.2","s":"ICMP not permitted here"}
`
	got := ParseAnswers(out, ps, "client exited")
	want := []Result{{Probe: ps[0]}, {Probe: ps[1], Skip: "ICMP not permitted here"}, {Probe: ps[2], Err: "client exited"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseAnswers = %v, want %v", got, want)
	}
}

// TestClientPodSpec: a client pod runs `kosmos probe client` with its
// targets, writes the answers to its termination log, on the network of
// its source; a server pod has no targets.
func TestClientPodSpec(t *testing.T) {
	p := PodSpec("fleet", "r1", "kosmos-probe", "img", 4890, HostNet, "client", []string{"--per-probe", "3s", "tcp:10.1.0.2"}, time.Minute)
	c := p.Spec.Containers[0]
	if got := strings.Join(c.Args, " "); got != "probe client --port 4890 --result-file /dev/termination-log --per-probe 3s tcp:10.1.0.2" {
		t.Errorf("client args: %s", got)
	}
	if !p.Spec.HostNetwork || p.Labels[LabelRole] != "client" || p.Labels[LabelNet] != "host" || p.Labels[LabelRun] != "r1" || p.Namespace != "kosmos-probe" {
		t.Errorf("client pod: hostNetwork %v, labels %v, namespace %s", p.Spec.HostNetwork, p.Labels, p.Namespace)
	}
	if c.ReadinessProbe != nil || len(c.Ports) != 0 {
		t.Errorf("a client pod has a readiness probe or ports: %+v", c)
	}
	s := PodSpec("fleet", "r1", "kosmos-probe", "img", 4890, PodNet, "server", nil, time.Minute)
	if s.Spec.HostNetwork || strings.Join(s.Spec.Containers[0].Args, " ") != "probe serve --port 4890" || *s.Spec.ActiveDeadlineSeconds != 60 {
		t.Errorf("server pod: hostNetwork %v, args %v, deadline %d", s.Spec.HostNetwork, s.Spec.Containers[0].Args, *s.Spec.ActiveDeadlineSeconds)
	}
}

// TestUnreached: a cluster whose probe pods never came up breaks every pair
// it is in, both ways, and the table says so.
func TestUnreached(t *testing.T) {
	tp := topo(cluster("a", nil), cluster("b", nil), cluster("c", nil))
	eps := []Endpoint{ep("a", PodNet, "10.1.0.2"), ep("a", HostNet, "192.168.0.1"), ep("b", PodNet, "10.2.0.2")}
	want := []string{
		"probe a/pod-net → c | FAIL | -: not probed: no c's pod-network probe",
		"probe a/host-net → c | FAIL | -: not probed: no c's pod-network probe",
		"probe b/host-net → a | FAIL | -: not probed: no b's host-network probe",
		"probe b/pod-net → c | FAIL | -: not probed: no c's pod-network probe",
		"probe b/host-net → c | FAIL | -: not probed: no b's host-network probe, no c's pod-network probe",
		"probe c/pod-net → a | FAIL | -: not probed: no c's pod-network probe",
		"probe c/host-net → a | FAIL | -: not probed: no c's host-network probe",
		"probe c/pod-net → b | FAIL | -: not probed: no c's pod-network probe",
		"probe c/host-net → b | FAIL | -: not probed: no c's host-network probe",
		"probe broken pairs | FAIL | a/pod-net → c, a/host-net → c, b/host-net → a, b/pod-net → c, b/host-net → c, c/pod-net → a, c/host-net → a, c/pod-net → b, c/host-net → b",
	}
	if got := table(Checks(Unreached(tp, eps))); got != strings.Join(want, "\n") {
		t.Errorf("Checks(Unreached):\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if got := Unreached(tp, append(eps, ep("b", HostNet, "192.168.0.2"), ep("c", PodNet, "10.3.0.2"), ep("c", HostNet, "192.168.0.3"))); len(got) != 0 {
		t.Errorf("Unreached with every endpoint: %v", got)
	}
}
