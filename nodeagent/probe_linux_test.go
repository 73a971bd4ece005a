package nodeagent

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"github.com/vishvananda/netns"
)

// TestBindToDevice binds a probing socket to a device in a network
// namespace of its own, and sees the binding go stale when the device is
// deleted and when it is recreated under the same name.
func TestBindToDevice(t *testing.T) {
	name := "kosmos-hafix-" + strconv.Itoa(os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ip("-n", name, "link", "add", "vx-t", "type", "veth", "peer", "name", "vx-u")
	c := listenIn(t, name)
	defer c.Close()
	if err := BindToDevice(c, "vx-none"); err == nil {
		t.Error("bound to a device that does not exist")
	}
	if err := BindToDevice(c, "vx-t"); err != nil {
		t.Fatal(err)
	}
	if DeviceGone(c) {
		t.Error("device reported gone while it exists")
	}
	ip("-n", name, "link", "del", "vx-t")
	if !DeviceGone(c) {
		t.Error("device deleted but not reported gone")
	}
	ip("-n", name, "link", "add", "vx-t", "type", "veth", "peer", "name", "vx-u")
	if !DeviceGone(c) {
		t.Error("device recreated (new index) but the binding not reported stale")
	}
}

// listenIn opens a UDP socket in the named network namespace.
func listenIn(t *testing.T, name string) *net.UDPConn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = netns.Set(orig) }()
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
