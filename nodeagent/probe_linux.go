package nodeagent

import (
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
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
