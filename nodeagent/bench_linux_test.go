package nodeagent

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// countingKernel counts the writes a Kernel makes.
type countingKernel struct {
	Kernel
	writes int
}

func (c *countingKernel) Apply(op Op) error { c.writes++; return c.Kernel.Apply(op) }

// freshKernel enters a fresh network namespace for the test (inFreshNS)
// and returns the agent's kernel there; the test's cleanup tears the
// agent's state down and leaves the namespace.
func freshKernel(t testing.TB) *LinuxKernel {
	t.Helper()
	leave := inFreshNS(t)
	lk, err := NewLinuxKernel()
	if err != nil {
		leave()
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = Teardown(lk); leave() })
	return lk
}

// inFreshNS locks the goroutine's thread into a new network namespace with an
// eth0 holding 192.168.0.1/24 (iptables, run by the kernel code, inherits
// it) and returns a function that leaves and deletes it.
func inFreshNS(b testing.TB) func() {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Fatal("the agent's kernel tests and benchmarks need root (network namespaces)")
	}
	name := fmt.Sprintf("kbench-%d", os.Getpid())
	_ = exec.Command("ip", "netns", "del", name).Run()
	for _, args := range [][]string{
		{"netns", "add", name},
		{"-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"},
		{"-n", name, "addr", "add", "192.168.0.1/24", "dev", "eth0"},
		{"-n", name, "link", "set", "eth0", "up"},
		{"-n", name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			b.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	runtime.LockOSThread()
	orig, _ := netns.Get()
	target, err := netns.GetFromName(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := netns.Set(target); err != nil {
		b.Fatal(err)
	}
	return func() {
		_ = netns.Set(orig)
		orig.Close()
		target.Close()
		runtime.UnlockOSThread()
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
}

// bigConfig is one vx-bridge with n routes, n FDB and n neighbour entries.
func bigConfig(n int) *v1alpha1.NodeConfigSpec {
	s := &v1alpha1.NodeConfigSpec{Devices: []v1alpha1.Device{{
		Name: "vx-bridge", VNI: 54, Port: 4876, MAC: "02:00:00:00:00:01", UnderlayIP: "192.168.0.1", NIC: "auto",
		Addresses: []string{"220.168.0.1/8"},
	}}}
	for i := range n {
		j := i + 2 // skip .0 and .1
		mac := fmt.Sprintf("02:00:00:%02x:%02x:%02x", j>>16&0xff, j>>8&0xff, j&0xff)
		hi, lo := j>>8, j&0xff
		s.FDB = append(s.FDB, v1alpha1.FDBEntry{MAC: mac, Dst: fmt.Sprintf("10.99.%d.%d", hi, lo), Device: "vx-bridge"})
		via := fmt.Sprintf("220.99.%d.%d", hi, lo)
		s.Neighbors = append(s.Neighbors, v1alpha1.Neighbor{IP: via, MAC: mac, Device: "vx-bridge"})
		s.Routes = append(s.Routes, v1alpha1.Route{Dst: fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256), Via: via, Device: "vx-bridge"})
	}
	return s
}

// ipBatch writes the same objects with `ip -batch` (iproute2 over netlink):
// the baseline the cold apply is compared with.
func ipBatch(b *testing.B, s *v1alpha1.NodeConfigSpec) time.Duration {
	var cmds strings.Builder
	fmt.Fprintf(&cmds, "link add vx-bridge address 02:00:00:00:00:01 mtu 1450 type vxlan id 54 local 192.168.0.1 dev eth0 dstport 4876 nolearning\n")
	fmt.Fprintf(&cmds, "addr add 220.168.0.1/8 dev vx-bridge\nlink set vx-bridge up\n")
	for i := range s.FDB {
		fmt.Fprintf(&cmds, "neigh add %s lladdr %s dev vx-bridge nud permanent\n", s.Neighbors[i].IP, s.Neighbors[i].MAC)
		fmt.Fprintf(&cmds, "route add %s via %s dev vx-bridge proto 75\n", s.Routes[i].Dst, s.Routes[i].Via)
	}
	var fdb strings.Builder
	for _, f := range s.FDB {
		fmt.Fprintf(&fdb, "fdb append %s dev vx-bridge dst %s self permanent\n", f.MAC, f.Dst)
	}
	start := time.Now()
	for _, c := range []struct {
		bin   string
		input string
	}{{"ip", cmds.String()}, {"bridge", fdb.String()}} {
		cmd := exec.Command(c.bin, "-batch", "-")
		cmd.Stdin = strings.NewReader(c.input)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s -batch: %v %s", c.bin, err, out)
		}
	}
	d := time.Since(start)
	if out, err := exec.Command("ip", "link", "del", "vx-bridge").CombinedOutput(); err != nil {
		b.Fatalf("cleanup: %v %s", err, out)
	}
	return d
}

// BenchmarkAgentColdApply: a NodeConfig with 2,000 routes, 2,000 FDB and
// 2,000 neighbour entries applied to an empty kernel (target ≤ 2 s), and the
// ratio to iproute2's batch mode writing the same objects in the same run.
func BenchmarkAgentColdApply(b *testing.B) {
	leave := inFreshNS(b)
	defer leave()
	lk, err := NewLinuxKernel()
	if err != nil {
		b.Fatal(err)
	}
	spec := bigConfig(2000)
	var agent, baseline time.Duration
	var writes int
	for b.Loop() {
		b.StopTimer()
		baseline += ipBatch(b, spec)
		k := &countingKernel{Kernel: lk}
		b.StartTimer()
		start := time.Now()
		if _, err := Set(k, spec); err != nil {
			b.Fatal(err)
		}
		agent += time.Since(start)
		b.StopTimer()
		writes = k.writes
		if _, err := Teardown(lk); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(writes), "writes/op")
	b.ReportMetric(agent.Seconds()/float64(b.N), "s/apply")
	b.ReportMetric(float64(agent)/float64(baseline), "x-ip-batch")
}

// BenchmarkAgentNoopResync: Set with the kernel already matching (target
// ≤ 50 ms and zero writes).
func BenchmarkAgentNoopResync(b *testing.B) {
	leave := inFreshNS(b)
	defer leave()
	lk, err := NewLinuxKernel()
	if err != nil {
		b.Fatal(err)
	}
	spec := bigConfig(2000)
	if _, err := Set(lk, spec); err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = Teardown(lk) }()
	k := &countingKernel{Kernel: lk}
	for b.Loop() {
		if _, err := Set(k, spec); err != nil {
			b.Fatal(err)
		}
	}
	if k.writes != 0 {
		b.Fatalf("a no-op resync wrote %d times", k.writes)
	}
	b.ReportMetric(0, "writes/op")
}
