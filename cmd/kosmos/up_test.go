package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kosmos.io/kosmos/internal/sandbox"
	"kosmos.io/kosmos/internal/testinfra/poll"
)

// runKosmos runs this test binary as the kosmos command.
func runKosmos(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KOSMOS_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestUpCheckDown is the main job as a user runs it: `kosmos up
// --dataplane` starts the example topology's sandbox in the background
// (with a network namespace and a real node agent per machine) and returns
// with its status; `kosmos check` passes, pods pinging pods across every
// pair of clusters (GlobalCIDR NAT and the Gateway-mode member among
// them); `kosmos diff` finds nothing to change; `kosmos down` stops every
// process and removes the state and the namespaces.
func TestUpCheckDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("kosmos up --dataplane needs root (network namespaces, VXLAN, iptables); make test runs as root")
	}
	dir := filepath.Join(t.TempDir(), "sandbox")
	// A copy of the example: the sandbox's reconciler follows this file, and
	// the test takes member-c out of it below.
	example, err := os.ReadFile(filepath.Join("..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topo := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(topo, example, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runKosmos(t, "up", "-f", topo, "--state-dir", dir, "--dns-port", "0", "--dataplane")
	t.Cleanup(func() { _, _ = runKosmos(t, "down", "--state-dir", dir) })
	if err != nil {
		t.Fatalf("kosmos up: %v\n%s", err, out)
	}
	for _, want := range []string{"first kosmos diff", "create NodeConfig/member-a-n1", "sandbox up in", "kosmos-member-a", "dig @127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("kosmos up printed no %q:\n%s", want, out)
		}
	}
	st, err := sandbox.ReadState(dir)
	if err != nil || st.PID == 0 {
		t.Fatalf("no running sandbox recorded: %+v %v", st, err)
	}
	out, err = runKosmos(t, "check", "-f", topo, "--state-dir", dir, "--probe", "--timeout", "1m")
	if err != nil || strings.Contains(out, "FAIL") {
		t.Errorf("kosmos check --probe: %v\n%s", err, out)
	}
	for _, want := range []string{
		`cluster member-b NodeConfigs applied\s+PASS`,                                                         // the agents ran
		`probe member-a/pod-net → member-b\s+PASS\s+icmp 100\.65\.1\.2, tcp 100\.65\.1\.2, udp 100\.65\.1\.2`, // overlapping CIDRs, Gateway mode
		`probe host/host-net → member-c\s+PASS\s+icmp 10\.30\.1\.2, tcp 10\.30\.1\.2, udp 10\.30\.1\.2`,
		`probe services\s+PASS\s+12 of 12 imports of the probe services have a ClusterSetIP`,             // --services, on by default
		`probe service member-a/host-net → member-b\s+PASS\s+tcp 10\.96\.\d+\.\d+, udp 10\.96\.\d+\.\d+`, // member-a's VIP of member-b's probe Service
		`probe broken pairs\s+PASS\s+none of 48`,
		`cluster host DNS answers clusterset\.local\s+PASS\s+127\.0\.0\.1:\d+: dns-version\.clusterset\.local\. TXT "1\.0\.0"`, // the sandbox's DNS, asked by kosmos check
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("kosmos check shows no %q:\n%s", want, out)
		}
	}
	// check --probe deleted its probe Services on exit; the reconciler's
	// next pass removes what it derived from them (their EndpointSlices in
	// the importing clusters), so diff may show those for a moment.
	poll.NoError(t, 20*time.Second, "kosmos diff after up to show no change", func() error {
		if out, err := runKosmos(t, "diff", "-f", topo, "--kubeconfig", st.Kubeconfig); err != nil {
			return fmt.Errorf("%v (exit 1 means changes)\n%s", err, out)
		}
		return nil
	})
	kc, err := clientcmd.LoadFromFile(st.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	memberCLeaves(t, topo, string(example))

	out, err = runKosmos(t, "down", "--state-dir", dir)
	if err != nil {
		t.Fatalf("kosmos down: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the state directory is still there (%v)", err)
	}
	if syscall.Kill(st.PID, 0) == nil {
		t.Errorf("the sandbox process %d still runs", st.PID)
	}
	if ns, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(ns), sandbox.NetnsPrefix) {
		t.Errorf("network namespaces left after kosmos down:\n%s", ns)
	}
	for name, c := range kc.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			t.Fatal(err)
		}
		// Its API servers are gone too (they may take a moment to exit).
		deadline := time.Now().Add(30 * time.Second)
		for {
			conn, err := net.DialTimeout("tcp", u.Host, time.Second)
			if err != nil {
				break
			}
			conn.Close()
			if time.Now().After(deadline) {
				t.Errorf("cluster %s still answers on %s after kosmos down", name, u.Host)
				break
			}
			<-time.After(200 * time.Millisecond)
		}
	}
}

// TestUpKeepsOthersDirectories: a state directory that holds someone's
// files and no sandbox is refused, and nothing in it is touched.
func TestUpKeepsOthersDirectories(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "thesis.tex")
	if err := os.WriteFile(precious, []byte("years of work"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runKosmos(t, "up", "-f", filepath.Join("..", "..", "topology.example.yaml"), "--state-dir", dir)
	if err == nil || !strings.Contains(out, "holds no sandbox") {
		t.Errorf("kosmos up took a directory that is not a sandbox's: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "years of work" {
		t.Errorf("a file Kosmos did not create was touched: %v", err)
	}
	if out, err := runKosmos(t, "down", "--state-dir", dir); err != nil {
		t.Errorf("kosmos down: %v\n%s", err, out)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("kosmos down removed a directory that is not a sandbox's: %v", err)
	}
}

// memberCLeaves takes member-c out of the topology file the running sandbox
// follows: the reconciler prunes what Kosmos wrote there, its agents tear
// down (no vx- device is left on its machines), and no other machine routes
// to it any more.
func memberCLeaves(t *testing.T, topo, example string) {
	t.Helper()
	vxDevices := func(ns string) string {
		out, err := exec.Command("ip", "-n", ns, "-o", "link", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s link: %v\n%s", ns, err, out)
		}
		var vx []string
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], "vx-") {
				vx = append(vx, strings.TrimSuffix(f[1], ":"))
			}
		}
		return strings.Join(vx, ",")
	}
	routes := func(ns string) string {
		out, err := exec.Command("ip", "-n", ns, "route", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s route: %v\n%s", ns, err, out)
		}
		return string(out)
	}
	cNodes := []string{sandbox.NetnsPrefix + "member-c-member-c-n1", sandbox.NetnsPrefix + "member-c-member-c-n2"}
	aNode := sandbox.NetnsPrefix + "member-a-member-a-n1"
	for _, ns := range cNodes {
		if vxDevices(ns) == "" {
			t.Fatalf("%s has no vx- device before member-c leaves", ns)
		}
	}
	if !strings.Contains(routes(aNode), "10.30.") {
		t.Fatalf("%s has no route to member-c before it leaves:\n%s", aNode, routes(aNode))
	}
	start := strings.Index(example, "    - name: member-c\n")
	end := strings.Index(example, "  distributionPolicies:")
	if start < 0 || end < start {
		t.Fatal("the example's member-c block moved")
	}
	left := example[:start] + example[end:]
	left = strings.Replace(left, "          - { name: member-c, weight: 1 }\n", "", 1)
	tmp := topo + ".new"
	if err := os.WriteFile(tmp, []byte(left), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, topo); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		var left []string
		for _, ns := range cNodes {
			if vx := vxDevices(ns); vx != "" {
				left = append(left, ns+": "+vx)
			}
		}
		if r := routes(aNode); strings.Contains(r, "10.30.") {
			left = append(left, aNode+" routes to member-c")
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("member-c left the topology 90s ago, still: %v", left)
		}
		<-time.After(250 * time.Millisecond)
	}
}
