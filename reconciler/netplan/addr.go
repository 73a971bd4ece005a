package netplan

import (
	"crypto/sha256"
	"net"
	"net/netip"

	"kosmos.io/kosmos/internal/globalip"
)

// keepHostBits returns the address inside cidr that keeps the host bits of
// underlay: 192.168.1.10 in 220.0.0.0/8 is 220.168.1.10. Both must be of the
// same family.
func keepHostBits(underlay netip.Addr, cidr netip.Prefix) netip.Addr {
	return spliceBits(cidr.Masked().Addr(), underlay, cidr.Bits())
}

// spliceBits returns the first n bits of hi followed by the remaining bits of lo.
func spliceBits(hi, lo netip.Addr, n int) netip.Addr { return globalip.Splice(hi, lo, n) }

// mapPrefix translates p, which lies inside real, to the same offset inside
// global (a 1:1 mapping of two equally sized ranges).
func mapPrefix(p, real, global netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(spliceBits(global.Addr(), p.Addr(), real.Bits()), p.Bits())
}

// deviceMAC derives a stable, locally administered unicast MAC from the
// identity of a device: recomputing a plan never changes it.
func deviceMAC(cluster, node, device string) string {
	h := sha256.Sum256([]byte(cluster + "\x00" + node + "\x00" + device))
	h[0] = (h[0] | 0x02) &^ 0x01
	return net.HardwareAddr(h[:6]).String()
}
