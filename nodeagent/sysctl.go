package nodeagent

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Sysctl is a kernel setting the agent's devices rely on, in dotted form
// (net.ipv4.ip_forward). The agent sets it and repairs it like any other
// object it owns, but never resets it: other users of the node rely on
// forwarding too, so a teardown leaves the values as they are.
type Sysctl struct {
	Key, Value string
	// Accept lists other values, space-separated, that serve the devices as
	// well: a key holding one of them is not changed (so a node that
	// provides them needs no write, even with /proc/sys read-only).
	Accept string
	// Dev is the device the key belongs to ("" for a global key): the
	// kernel drops the key with the device, so a recreated device needs it
	// set again.
	Dev string
}

// ServedBy says whether a key holding value serves: it is Value or one of
// Accept.
func (s Sysctl) ServedBy(value string) bool {
	return value == s.Value || slices.Contains(strings.Fields(s.Accept), value)
}

// servedValue is what Read reports for a key of want holding value: the
// wanted value when value serves (so a state that serves compares and
// prints equal to the desired one), else value itself.
func servedValue(want Sysctl, value string) string {
	if want.ServedBy(value) {
		return want.Value
	}
	return value
}

// rpFilterAll is the global reverse-path filter: the kernel filters a
// device by the larger of it and the device's own key.
const rpFilterAll = "net.ipv4.conf.all.rp_filter"

// maxRPFilter is the reverse-path filtering the kernel applies to a device
// holding dev under all ("" when either cannot be read: then it is
// unknown, and the device's key is written).
func maxRPFilter(dev, all string) string {
	if dev == "" || all == "" {
		return ""
	}
	return max(dev, all) // "0" < "1" < "2"
}

// Path is the key's file under /proc/sys.
func (s Sysctl) Path() string { return strings.ReplaceAll(s.Key, ".", "/") }

// sysctlsFor returns the settings the given devices rely on, sorted by key:
// forwarding for each family with a device (the node forwards between its
// devices and the pods), and loose reverse-path filtering on each IPv4
// device (replies through a tunnel come from ranges routed elsewhere). Read
// reads exactly these keys: which keys matter is a function of the devices
// alone, on both sides of the diff.
func sysctlsFor(links []Link) []Sysctl {
	var out []Sysctl
	for _, l := range links {
		if a, err := netip.ParseAddr(l.Local); err == nil && a.Is6() {
			out = append(out, Sysctl{Key: "net.ipv6.conf.all.forwarding", Value: "1"})
			continue
		}
		// No reverse-path filtering (0) serves as well as loose (2); what
		// is compared is the filtering in effect (effectiveSysctl): a
		// device at 0 under conf.all=1 filters strictly, and is set to 2.
		out = append(out, Sysctl{Key: "net.ipv4.ip_forward", Value: "1"},
			Sysctl{Key: "net.ipv4.conf." + l.Name + ".rp_filter", Value: "2", Accept: "0", Dev: l.Name})
	}
	slices.SortFunc(out, func(a, b Sysctl) int { return cmp.Compare(a.Key, b.Key) })
	return slices.Compact(out)
}

// diffSysctls sets each desired setting whose current value neither is the
// desired one nor one it accepts, and
// each of a device being recreated (the new device starts from the
// defaults). A setting no longer desired is left as it is.
func diffSysctls(current, desired []Sysctl, recreated map[string]bool) []Op {
	cur := index(current, func(s Sysctl) string { return s.Key })
	var ops []Op
	for _, d := range desired {
		c, ok := cur[d.Key]
		if !ok || !d.ServedBy(c.Value) || (d.Dev != "" && recreated[d.Dev]) {
			ops = append(ops, Op{Kind: OpSet, Sysctl: &d})
		}
	}
	return ops
}

func (s Sysctl) String() string { return fmt.Sprintf("%s=%s", s.Key, s.Value) }
