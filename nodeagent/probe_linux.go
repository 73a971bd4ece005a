package nodeagent

import (
	"fmt"
	"net"
	"runtime"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ListenHere returns a HAOptions.Listen that opens its sockets in the
// network namespace of the calling thread (the one EnterNetNS entered),
// whichever goroutine calls it later: a socket belongs to the namespace it
// was created in.
func ListenHere() (func(network string, laddr *net.UDPAddr) (*net.UDPConn, error), error) {
	target, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("current network namespace: %w", err)
	}
	return func(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		if !orig.Equal(target) {
			if err := netns.Set(target); err != nil {
				return nil, err
			}
			defer func() { _ = netns.Set(orig) }()
		}
		return net.ListenUDP(network, laddr)
	}, nil
}

// BindToDevice is a HAOptions.BindDevice: it binds c to the named device
// (SO_BINDTODEVICE, resolved in the socket's own network namespace), so
// that its probes leave over that device and only replies that arrive on
// it are read. It needs CAP_NET_RAW, which the agent has.
func BindToDevice(c *net.UDPConn, device string) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("bind the probe socket to %s: %w", device, err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, device)
	}); err != nil {
		return fmt.Errorf("bind the probe socket to %s: %w", device, err)
	}
	if serr != nil {
		return fmt.Errorf("bind the probe socket to %s: %w", device, serr)
	}
	return nil
}

// DeviceGone is a HAOptions.DeviceGone: the device c was bound to by
// BindToDevice no longer exists (the kernel keeps the index it was bound
// to; a device recreated under the same name has another).
func DeviceGone(c syscall.Conn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return true
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
	}); err != nil {
		return true
	}
	return serr != nil
}
