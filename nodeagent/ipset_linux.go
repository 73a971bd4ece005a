package nodeagent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The kernel side of the agent's ipsets (ipset.go), over netlink: no
// ipset binary is needed.

// readSets reads the agent's sets with their members, in one netlink dump
// parsed here (the library's reader starts a goroutine for each attribute
// list it parses: 2,000 members took it about 100 ms, a no-op pass's whole
// budget). The kernel dumps a large set in several messages, only the
// first of which carries its type and family: they are merged by name.
func readSets() ([]IPSet, error) {
	req := nl.NewNetlinkRequest(nl.IPSET_CMD_LIST|(unix.NFNL_SUBSYS_IPSET<<8), nl.GetIpsetFlags(nl.IPSET_CMD_LIST))
	req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(unix.AF_NETLINK), Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
	msgs, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	if err != nil {
		return nil, fmt.Errorf("list ipsets: %w", err)
	}
	var out []IPSet
	at := map[string]int{}
	for _, msg := range msgs {
		if len(msg) < 4 {
			continue
		}
		var m setMessage
		if m.parse(msg[4:]); !ownSet(m.name) { // behind the nfgenmsg header
			continue
		}
		i, ok := at[m.name]
		if !ok {
			i = len(out)
			at[m.name] = i
			out = append(out, IPSet{Name: m.name})
		}
		s := &out[i]
		if m.typ != "" {
			s.Type, s.Family = m.typ, "ipv4"
			if m.family == unix.AF_INET6 {
				s.Family = "ipv6"
			}
		}
		for _, e := range m.entries {
			if s.Type == setHashNet {
				s.Members = append(s.Members, netip.PrefixFrom(e.addr, int(e.cidr)).String())
			} else {
				s.Members = append(s.Members, e.addr.String())
			}
		}
	}
	return out, nil
}

// setMessage is what readSets takes from one message of the dump.
type setMessage struct {
	name, typ string
	family    uint8
	entries   []setEntryRead
}

type setEntryRead struct {
	addr netip.Addr
	cidr uint8
}

// attrs walks a list of netlink attributes, calling f with each one's type
// (flags masked off) and value; a malformed length ends the walk.
func attrs(data []byte, f func(typ uint16, val []byte)) {
	for len(data) >= 4 {
		n := int(nl.NativeEndian().Uint16(data[0:2]))
		if n < 4 || n > len(data) {
			return
		}
		f(nl.NativeEndian().Uint16(data[2:4])&nl.NLA_TYPE_MASK, data[4:n])
		data = data[min(len(data), (n+3)&^3):]
	}
}

// parse reads a message: its set's name first, the rest only for one of
// the agent's sets (a node's other sets, kube-proxy's or Calico's, may hold
// many thousand members).
func (m *setMessage) parse(data []byte) {
	attrs(data, func(typ uint16, val []byte) {
		if typ == nl.IPSET_ATTR_SETNAME {
			m.name = strings.TrimRight(string(val), "\x00")
		}
	})
	if !ownSet(m.name) {
		return
	}
	attrs(data, func(typ uint16, val []byte) {
		switch typ {
		case nl.IPSET_ATTR_TYPENAME:
			m.typ = strings.TrimRight(string(val), "\x00")
		case nl.IPSET_ATTR_FAMILY:
			if len(val) > 0 {
				m.family = val[0]
			}
		case nl.IPSET_ATTR_ADT:
			attrs(val, func(typ uint16, val []byte) {
				if typ == nl.IPSET_ATTR_DATA {
					m.entries = append(m.entries, parseSetEntry(val))
				}
			})
		}
	})
}

// parseSetEntry reads a member's address and prefix length.
func parseSetEntry(data []byte) setEntryRead {
	var e setEntryRead
	attrs(data, func(typ uint16, val []byte) {
		switch typ {
		case nl.IPSET_ATTR_IP:
			attrs(val, func(_ uint16, val []byte) {
				if a, ok := netip.AddrFromSlice(val); ok { // 4 bytes in an IPv4 set, 16 in an IPv6 one
					e.addr = a
				}
			})
		case nl.IPSET_ATTR_CIDR:
			if len(val) > 0 {
				e.cidr = val[0]
			}
		}
	})
	return e
}

// applySet performs one set write: create and fill, add and remove
// members, or destroy. An error names the set and the member at fault.
func applySet(kind OpKind, c *SetChange) error {
	switch kind {
	case OpDel:
		return destroySet(c.Set.Name)
	case OpAdd:
		fam := uint8(unix.AF_INET)
		if c.Set.Family == "ipv6" {
			fam = unix.AF_INET6
		}
		if err := netlink.IpsetCreate(c.Set.Name, c.Set.Type, netlink.IpsetCreateOptions{Family: fam, MaxElements: setMaxElem}); err != nil {
			return fmt.Errorf("create ipset %s (%s %s): %w", c.Set.Name, c.Set.Family, c.Set.Type, err)
		}
		return setMembersOp(c.Set, c.Set.Members, netlink.IpsetAdd, "add")
	}
	if err := setMembersOp(c.Set, c.Add, netlink.IpsetAdd, "add"); err != nil {
		return err
	}
	return setMembersOp(c.Set, c.Del, netlink.IpsetDel, "del")
}

// setMembersOp adds or removes members of set, one netlink request each.
func setMembersOp(set IPSet, members []string, do func(string, *netlink.IPSetEntry) error, verb string) error {
	for _, m := range members {
		e, err := setEntry(set.Type, m)
		if err == nil {
			err = do(set.Name, e)
		}
		if err != nil {
			return fmt.Errorf("ipset %s: %s %s: %w", set.Name, verb, m, err)
		}
	}
	return nil
}

// setEntry is the netlink entry of a member: an address, or a prefix for
// hash:net.
func setEntry(typ, member string) (*netlink.IPSetEntry, error) {
	if typ == setHashNet {
		p, err := netip.ParsePrefix(member)
		if err != nil {
			return nil, err
		}
		return &netlink.IPSetEntry{IP: net.IP(p.Addr().AsSlice()), CIDR: uint8(p.Bits())}, nil
	}
	a, err := netip.ParseAddr(member)
	if err != nil {
		return nil, err
	}
	return &netlink.IPSetEntry{IP: net.IP(a.AsSlice())}, nil
}

// destroySet destroys one of the agent's sets. With iptables on nf_tables
// the rule that matched it lets go of it a moment after the rule is
// removed (the kernel finishes the removal in a work queue), so a destroy
// right after is refused as busy: it is tried again for up to two seconds.
func destroySet(name string) error {
	var err error
	for wait := 5 * time.Millisecond; ; wait *= 2 {
		err = netlink.IpsetDestroy(name)
		if !errors.Is(err, nl.IPSetError(nl.IPSET_ERR_BUSY)) || wait > time.Second {
			break
		}
		time.Sleep(wait)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nl.IPSetError(nl.IPSET_ERR_BUSY)):
		return fmt.Errorf("destroy ipset %s: a rule still matches it (%w)", name, err)
	}
	return fmt.Errorf("destroy ipset %s: %w", name, err)
}
