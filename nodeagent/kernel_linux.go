package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// LinuxKernel is the Kernel of the network namespace the process runs in:
// netlink for devices, addresses, routes and entries; iptables-save and
// iptables-restore (ip6tables- for IPv6) for chains.
type LinuxKernel struct {
	// LeaveOffloads, when set, leaves the offloads of the agent's devices
	// as they are: Read reports none, so none is compared or written (for
	// a node whose kernel or NIC needs one of them off; offload.go).
	LeaveOffloads bool
}

// NewLinuxKernel connects to the kernel of the current network namespace;
// it fails when the iptables tools are missing.
func NewLinuxKernel() (*LinuxKernel, error) {
	for _, bin := range []string{"iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("the agent needs %s (package iptables): %w", bin, err)
		}
	}
	return &LinuxKernel{}, nil
}

func ownedLinks() ([]*netlink.Vxlan, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []*netlink.Vxlan
	for _, l := range links {
		if vx, ok := l.(*netlink.Vxlan); ok && strings.HasPrefix(vx.Name, v1alpha1.DevicePrefix) {
			out = append(out, vx)
		}
	}
	return out, nil
}

// Read returns what the agent owns in this namespace.
func (k *LinuxKernel) Read() (State, error) {
	var s State
	links, err := ownedLinks()
	if err != nil {
		return s, err
	}
	names := map[int]string{}
	for _, vx := range links {
		names[vx.Index] = vx.Name
		if err := readDevice(&s, vx); err != nil {
			return s, err
		}
	}
	s.Sysctls = readSysctls(s.Links)
	if !k.LeaveOffloads {
		s.Offloads = readOffloads(s.Links)
	}
	if s.Routes, s.Others.Routes, err = readRoutes(names); err != nil {
		return s, err
	}
	if s.Others.Addrs, err = hostAddrs(names); err != nil {
		return s, err
	}
	if s.Chains, err = readChains(); err != nil {
		return s, err
	}
	if s.Sets, err = readSets(); err != nil {
		return s, err
	}
	s.Normalize()
	return s, nil
}

// readDevice appends one of the agent's devices to s, with its addresses,
// its static FDB entries and its permanent neighbour entries.
func readDevice(s *State, vx *netlink.Vxlan) error {
	parent, local := "", ""
	if p, err := netlink.LinkByIndex(vx.VtepDevIndex); err == nil {
		parent = p.Attrs().Name
	}
	if vx.SrcAddr != nil {
		local = vx.SrcAddr.String()
	}
	s.Links = append(s.Links, Link{Name: vx.Name, VNI: vx.VxlanId, Port: vx.Port, MAC: vx.HardwareAddr.String(), MTU: vx.MTU, Local: local, Parent: parent})
	addrs, err := netlink.AddrList(vx, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", vx.Name, err)
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() {
			continue // the kernel's own fe80:: address
		}
		s.Addrs = append(s.Addrs, Addr{Dev: vx.Name, CIDR: a.IPNet.String()})
	}
	fdb, err := netlink.NeighList(vx.Index, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list FDB of %s: %w", vx.Name, err)
	}
	for _, n := range fdb {
		if n.IP != nil && n.HardwareAddr != nil && n.State&netlink.NUD_PERMANENT != 0 {
			s.FDB = append(s.FDB, FDB{Dev: vx.Name, MAC: n.HardwareAddr.String(), Dst: n.IP.String()})
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		neighs, err := netlink.NeighList(vx.Index, fam)
		if err != nil {
			return fmt.Errorf("list neighbours of %s: %w", vx.Name, err)
		}
		for _, n := range neighs {
			if n.State&netlink.NUD_PERMANENT != 0 && n.HardwareAddr != nil {
				s.Neighs = append(s.Neighs, Neigh{Dev: vx.Name, IP: n.IP.String(), MAC: n.HardwareAddr.String()})
			}
		}
	}
	return nil
}

// readRoutes returns the routes of the agent's protocol through the agent's
// devices (names, by index): only those are its own. Every other route of
// the main table is another owner's: others maps its destination to a
// description of it (RouteTakenError quotes it).
func readRoutes(names map[int]string) (ours []Route, others map[string]string, err error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, nil, fmt.Errorf("list routes: %w", err)
	}
	others = map[string]string{}
	for _, r := range routes {
		if r.Dst == nil {
			continue // a default route: the agent never adds one
		}
		if _, dev := names[r.LinkIndex]; dev && r.Protocol == RouteProtocol {
			ours = append(ours, Route{Dst: r.Dst.String(), Via: r.Gw.String(), Dev: names[r.LinkIndex]})
			continue
		}
		others[r.Dst.String()] = routeOwner(r)
	}
	return ours, others, nil
}

// routeOwner describes a route of another owner: its protocol and device.
func routeOwner(r netlink.Route) string {
	dev := fmt.Sprintf("ifindex %d", r.LinkIndex)
	if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
		dev = l.Attrs().Name
	}
	return fmt.Sprintf("proto %s dev %s", r.Protocol, dev)
}

// hostAddrs returns the addresses of every interface that is not one of
// the agent's (names, by index), loopback included, link-local excluded.
func hostAddrs(names map[int]string) ([]netip.Prefix, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if _, ours := names[a.LinkIndex]; ours || a.IP.IsLinkLocalUnicast() {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ok {
			out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	return out, nil
}

// Resolve fills in the parent the link's nic selector picks (chooseNIC:
// auto, a name, cidr:<CIDR>, can-reach:<IP>) and, when unset, the MTU
// from that parent's.
func (k *LinuxKernel) Resolve(l *Link) error {
	sel, err := v1alpha1.ParseNIC(l.Parent)
	if err != nil {
		return err
	}
	if sel.Name != "" && l.MTU != 0 {
		return nil
	}
	local, err := netip.ParseAddr(l.Local)
	if err != nil {
		return fmt.Errorf("underlay address %q: %w", l.Local, err)
	}
	ifaces, err := nicInfos()
	if err != nil {
		return err
	}
	name, err := chooseNIC(l.Parent, local.Unmap(), ifaces, routeDevice)
	if err != nil {
		return err
	}
	parent, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	l.Parent = name
	if l.MTU == 0 {
		// VXLAN adds 50 bytes over IPv4 (20 IP + 8 UDP + 8 VXLAN + 14
		// Ethernet) and 70 over IPv6 (a 40-byte outer header); the kernel
		// refuses a larger MTU.
		overhead := 50
		if !local.Unmap().Is4() {
			overhead = 70
		}
		l.MTU = parent.Attrs().MTU - overhead - l.Overhead
	}
	return nil
}

// nicInfos lists the interfaces with their addresses.
func nicInfos() ([]nicInfo, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	byIndex := map[int]*nicInfo{}
	out := make([]nicInfo, len(links))
	for i, l := range links {
		out[i].Name = l.Attrs().Name
		byIndex[l.Attrs().Index] = &out[i]
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			if n := byIndex[a.LinkIndex]; n != nil {
				n.Addrs = append(n.Addrs, ip.Unmap())
			}
		}
	}
	return out, nil
}

// routeDevice is the interface the kernel's route to ip leaves through.
func routeDevice(ip netip.Addr) (string, error) {
	rs, err := netlink.RouteGet(ip.AsSlice())
	if err != nil {
		return "", err
	}
	if len(rs) == 0 || rs[0].LinkIndex == 0 {
		return "", errors.New("no route")
	}
	l, err := netlink.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return "", err
	}
	return l.Attrs().Name, nil
}

// linkIndex returns the index of the named device; its error is netlink's
// own, for the caller that names the device.
func linkIndex(name string) (int, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// Apply performs one write. Each kind of object has its own add and delete
// below, and each names in its error what it wrote, where, and why it failed.
func (k *LinuxKernel) Apply(op Op) error {
	switch {
	case op.Link != nil && op.Kind == OpSet:
		return setLink(op.Link)
	case op.Link != nil:
		return addOrDel(op.Kind, op.Link, addLink, delLink)
	case op.Addr != nil:
		return addOrDel(op.Kind, op.Addr, addAddr, delAddr)
	case op.Route != nil && op.Kind == OpDel:
		return delRoute(op.Route)
	case op.Route != nil:
		return addRoute(op.Route, op.Kind == OpSet)
	case op.FDB != nil:
		return addOrDel(op.Kind, op.FDB, addFDB, delFDB)
	case op.Neigh != nil:
		return addOrDel(op.Kind, op.Neigh, addNeigh, delNeigh)
	case op.Chains != nil:
		return restoreChains(op.Chains)
	case op.Sysctl != nil:
		return writeSysctl(op.Sysctl)
	case op.Offload != nil:
		return writeOffload(op.Offload)
	case op.Set != nil:
		return applySet(op.Kind, op.Set)
	}
	return errors.New("empty operation")
}

// addOrDel calls del for OpDel and add for the other kinds (OpSet for a
// chain: setting it is how it is added).
func addOrDel[T any](kind OpKind, x *T, add, del func(*T) error) error {
	if kind == OpDel {
		return del(x)
	}
	return add(x)
}

// addLink creates a VXLAN device, sets the sysctls it needs and brings it up.
func addLink(l *Link) error {
	where := fmt.Sprintf("add link %s (vni %d port %d local %s dev %s)", l.Name, l.VNI, l.Port, l.Local, l.Parent)
	parent, err := netlink.LinkByName(l.Parent)
	if err != nil {
		return fmt.Errorf("%s: parent: %w", where, err)
	}
	mac, err := net.ParseMAC(l.MAC)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.HardwareAddr = l.Name, l.MTU, mac
	vx := &netlink.Vxlan{
		LinkAttrs: attrs, VxlanId: l.VNI, VtepDevIndex: parent.Attrs().Index,
		SrcAddr: net.ParseIP(l.Local), Port: l.Port, Learning: false,
	}
	if err := netlink.LinkAdd(vx); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := netlink.LinkSetUp(vx); err != nil {
		return fmt.Errorf("set link %s up: %w", l.Name, err)
	}
	return nil
}

func delLink(l *Link) error {
	link, err := netlink.LinkByName(l.Name)
	if err == nil {
		err = netlink.LinkDel(link)
	}
	if err != nil {
		return fmt.Errorf("delete link %s: %w", l.Name, err)
	}
	return nil
}

// setLink changes a live device's MTU and MAC where they differ; the rest of
// it stays, and so do its addresses, routes and entries.
func setLink(l *Link) error {
	link, err := netlink.LinkByName(l.Name)
	if err != nil {
		return fmt.Errorf("set link %s: %w", l.Name, err)
	}
	if link.Attrs().MTU != l.MTU {
		if err := netlink.LinkSetMTU(link, l.MTU); err != nil {
			return fmt.Errorf("set mtu %d on link %s (parent %s): %w", l.MTU, l.Name, l.Parent, err)
		}
	}
	mac, err := net.ParseMAC(l.MAC)
	if err != nil {
		return fmt.Errorf("set mac %q on link %s: %w", l.MAC, l.Name, err)
	}
	if link.Attrs().HardwareAddr.String() != mac.String() {
		if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("set mac %s on link %s: %w", mac, l.Name, err)
		}
	}
	return nil
}

// readSysctls reads the settings the devices rely on (sysctlsFor). A key
// holding a value that serves reads as the wanted value (servedValue); one
// that cannot be read reads as "", so that Set writes it and reports why
// that fails.
func readSysctls(links []Link) []Sysctl {
	out := sysctlsFor(links)
	for i := range out {
		out[i].Value = servedValue(out[i], effectiveSysctl(out[i].Key))
	}
	return out
}

// readProcSys reads one key under /proc/sys ("" when it cannot be read).
func readProcSys(key string) string {
	raw, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

// effectiveSysctl is the value the kernel acts on for key. A device's
// rp_filter is not its own value alone: the kernel applies the larger of
// conf.all and conf.<dev>, so a device at 0 under all=1 filters strictly.
func effectiveSysctl(key string) string {
	v := readProcSys(key)
	if !strings.HasPrefix(key, "net.ipv4.conf.") || !strings.HasSuffix(key, ".rp_filter") || key == rpFilterAll {
		return v
	}
	return maxRPFilter(v, readProcSys(rpFilterAll))
}

// writeSysctl sets one setting, unless the key serves already (a new
// device's key was not there to read when the pass began); its error names
// the setting, the file and the cause (a read-only /proc/sys in an
// unprivileged container, say).
func writeSysctl(x *Sysctl) error {
	if v := effectiveSysctl(x.Key); v != "" && x.ServedBy(v) {
		return nil
	}
	if err := os.WriteFile(filepath.Join("/proc/sys", x.Path()), []byte(x.Value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s: %w", x, err)
	}
	return nil
}

func addAddr(a *Addr) error {
	if err := addrOp(a, netlink.AddrAdd); err != nil {
		return fmt.Errorf("add address %s dev %s: %w", a.CIDR, a.Dev, err)
	}
	return nil
}

func delAddr(a *Addr) error {
	if err := addrOp(a, netlink.AddrDel); err != nil {
		return fmt.Errorf("delete address %s dev %s: %w", a.CIDR, a.Dev, err)
	}
	return nil
}

func addrOp(a *Addr, do func(netlink.Link, *netlink.Addr) error) error {
	l, err := netlink.LinkByName(a.Dev)
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(a.CIDR)
	if err != nil {
		return err
	}
	return do(l, addr)
}

// netlinkRoute is the route as netlink takes it, tagged with the agent's
// protocol.
func netlinkRoute(r *Route) (*netlink.Route, error) {
	idx, err := linkIndex(r.Dev)
	if err != nil {
		return nil, err
	}
	_, dst, err := net.ParseCIDR(r.Dst)
	if err != nil {
		return nil, err
	}
	return &netlink.Route{Dst: dst, Gw: net.ParseIP(r.Via), LinkIndex: idx, Protocol: RouteProtocol}, nil
}

// addRoute adds a route exclusively (NLM_F_EXCL): the kernel keys routes on
// table, destination and metric, not on protocol, so a replace would take
// over another owner's route to the same destination and a later delete
// would remove it. Only when the destination is held already, and only by
// the agent's own routes (a pass that raced with itself, a route left by a
// crashed agent), is it replaced; held by anyone else, it is refused with a
// RouteTakenError. OpSet (a new next hop or device for a destination the
// agent holds) takes the same way, starting with the check.
func addRoute(r *Route, replace bool) error {
	nr, err := netlinkRoute(r)
	if err != nil {
		return fmt.Errorf("add route %s via %s dev %s: %w", r.Dst, r.Via, r.Dev, err)
	}
	if !replace {
		if err = netlink.RouteAdd(nr); !errors.Is(err, unix.EEXIST) {
			return wrapRoute("add", r, err)
		}
	}
	if owner, err := foreignOwner(nr); err != nil {
		return wrapRoute("add", r, err)
	} else if owner != "" {
		return &RouteTakenError{Route: *r, Owner: owner}
	}
	return wrapRoute("replace", r, netlink.RouteReplace(nr))
}

// foreignOwner describes a route of the main table to nr's destination that
// is not the agent's, or returns "" when there is none.
func foreignOwner(nr *netlink.Route) (string, error) {
	held, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Dst: nr.Dst}, netlink.RT_FILTER_DST)
	if err != nil {
		return "", fmt.Errorf("list routes to %s: %w", nr.Dst, err)
	}
	for _, h := range held {
		if h.Protocol != RouteProtocol || !isOwnedLink(h.LinkIndex) {
			return routeOwner(h), nil
		}
	}
	return "", nil
}

// isOwnedLink says whether the interface is one of the agent's devices.
func isOwnedLink(index int) bool {
	l, err := netlink.LinkByIndex(index)
	return err == nil && l.Type() == "vxlan" && strings.HasPrefix(l.Attrs().Name, v1alpha1.DevicePrefix)
}

func wrapRoute(verb string, r *Route, err error) error {
	if err != nil {
		return fmt.Errorf("%s route %s via %s dev %s: %w", verb, r.Dst, r.Via, r.Dev, err)
	}
	return nil
}

func delRoute(r *Route) error {
	nr, err := netlinkRoute(r)
	if err == nil {
		err = netlink.RouteDel(nr)
	}
	if err != nil {
		return fmt.Errorf("delete route %s via %s dev %s: %w", r.Dst, r.Via, r.Dev, err)
	}
	return nil
}

// netlinkFDB is the static FDB entry as netlink takes it.
func netlinkFDB(f *FDB) (*netlink.Neigh, error) {
	idx, err := linkIndex(f.Dev)
	if err != nil {
		return nil, err
	}
	mac, _ := net.ParseMAC(f.MAC)
	return &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: net.ParseIP(f.Dst), HardwareAddr: mac}, nil
}

// addFDB appends: a VXLAN device holds one entry per remote VTEP, several
// of them for the same all-zero MAC if need be.
func addFDB(f *FDB) error {
	n, err := netlinkFDB(f)
	if err == nil {
		err = netlink.NeighAppend(n)
	}
	if err != nil {
		return fmt.Errorf("add fdb entry %s dst %s dev %s: %w", f.MAC, f.Dst, f.Dev, err)
	}
	return nil
}

func delFDB(f *FDB) error {
	n, err := netlinkFDB(f)
	if err == nil {
		err = netlink.NeighDel(n)
	}
	if err != nil {
		return fmt.Errorf("delete fdb entry %s dst %s dev %s: %w", f.MAC, f.Dst, f.Dev, err)
	}
	return nil
}

// netlinkNeigh is the permanent neighbour entry as netlink takes it.
func netlinkNeigh(n *Neigh) (*netlink.Neigh, error) {
	idx, err := linkIndex(n.Dev)
	if err != nil {
		return nil, err
	}
	mac, _ := net.ParseMAC(n.MAC)
	ip := net.ParseIP(n.IP)
	fam := netlink.FAMILY_V6
	if ip.To4() != nil {
		fam = netlink.FAMILY_V4
	}
	return &netlink.Neigh{LinkIndex: idx, Family: fam, State: netlink.NUD_PERMANENT, IP: ip, HardwareAddr: mac}, nil
}

// addNeigh sets rather than adds: an entry the kernel learnt for the same
// address becomes the permanent one.
func addNeigh(n *Neigh) error {
	nn, err := netlinkNeigh(n)
	if err == nil {
		err = netlink.NeighSet(nn)
	}
	if err != nil {
		return fmt.Errorf("add neighbour %s lladdr %s dev %s: %w", n.IP, n.MAC, n.Dev, err)
	}
	return nil
}

func delNeigh(n *Neigh) error {
	nn, err := netlinkNeigh(n)
	if err == nil {
		err = netlink.NeighDel(nn)
	}
	if err != nil {
		return fmt.Errorf("delete neighbour %s lladdr %s dev %s: %w", n.IP, n.MAC, n.Dev, err)
	}
	return nil
}

// restoreChains writes one table's chains in one iptables-restore
// --noflush transaction (restoreInput). A failure names the table, the line
// of the input that failed and what iptables-restore said.
func restoreChains(c *ChainSet) error {
	bin := map[string]string{"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}[c.Family]
	input := restoreInput(c)
	cmd := exec.Command(bin, "--noflush", "-w", "5")
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	var said []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "Try `") {
			said = append(said, l)
		}
	}
	msg := strings.Join(said, "; ")
	// A rule refused as it is parsed names its line; one refused at commit
	// (nf_tables checks jump targets then) names the COMMIT line.
	if n, ok := failedLine(msg); ok {
		if lines := strings.Split(input, "\n"); n >= 1 && n <= len(lines) && lines[n-1] != "COMMIT" {
			msg = fmt.Sprintf("line %d %q: %s", n, lines[n-1], msg)
		}
	}
	return fmt.Errorf("set %s: %s --noflush: %w: %s", c, bin, err, msg)
}

// failedLine finds "Error occurred at line: N" in iptables-restore's output.
func failedLine(out string) (int, bool) {
	_, after, ok := strings.Cut(out, "line: ")
	if !ok {
		return 0, false
	}
	var n int
	_, err := fmt.Sscanf(after, "%d", &n)
	return n, err == nil
}

// Subscribe signals on the returned channel whenever a route or link of this
// namespace changes, until ctx ends. Signals are coalesced: one pending
// signal stands for any number of events.
func Subscribe(ctx context.Context) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	routes := make(chan netlink.RouteUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.RouteSubscribe(routes, done); err != nil {
		return nil, fmt.Errorf("subscribe to routes: %w", err)
	}
	if err := netlink.LinkSubscribe(links, done); err != nil {
		close(done)
		return nil, fmt.Errorf("subscribe to links: %w", err)
	}
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-routes:
				if !ok {
					return
				}
				signal()
			case _, ok := <-links:
				if !ok {
					return
				}
				signal()
			}
		}
	}()
	return out, nil
}

// readChains reads the agent's chains with one iptables-save per family and
// table (a handful of execs instead of three per chain: this is what keeps a
// no-op resync cheap).
func readChains() ([]Chain, error) {
	var out []Chain
	for fam, bin := range map[string]string{"ipv4": "iptables-save", "ipv6": "ip6tables-save"} {
		for _, table := range []string{"nat", "filter", "raw"} {
			raw, err := exec.Command(bin, "-t", table).Output()
			if err != nil {
				return nil, fmt.Errorf("%s -t %s: %w", bin, table, err)
			}
			out = append(out, parseSave(fam, table, string(raw))...)
		}
	}
	return out, nil
}

// parseSave extracts the agent's chains from iptables-save output. A chain
// whose jump from its built-in chain is missing, or not where it belongs
// (jumpMark), is reported with a marker rule (markNoJump, markMisplaced),
// so that Set repairs the jump.
func parseSave(fam, table, save string) []Chain {
	chains := map[string]*Chain{}
	var order []string
	builtin := map[string][]string{} // rules of the built-in chains, in order
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, ":KOSMOS-"):
			name := strings.Fields(line[1:])[0]
			if o, ok := ownedChains[name]; ok && o.table == table {
				chains[name] = &Chain{Family: fam, Table: table, Name: name}
				order = append(order, name)
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.SplitN(line, " ", 3)
			if len(f) < 3 {
				continue
			}
			if c, ok := chains[f[1]]; ok {
				c.Rules = append(c.Rules, f[2])
				continue
			}
			builtin[f[1]] = append(builtin[f[1]], f[2])
		}
	}
	out := make([]Chain, 0, len(order))
	for _, name := range order {
		c := chains[name]
		if mark := jumpMark(c, builtin[ownedChains[name].builtin]); mark != "" {
			c.Rules = append(c.Rules, mark)
		}
		out = append(out, *c)
	}
	return out
}

// jumpMark checks the jump to chain c among rules (its built-in chain's):
// "" when it is where it belongs, else the marker (markNoJump,
// markMisplaced) that makes Set repair it. For a jumpAfterPolicy chain it
// also records where the jump must be inserted (c.insertAt).
func jumpMark(c *Chain, rules []string) string {
	o := ownedChains[c.Name]
	if o.place == jumpNone {
		return ""
	}
	jump := "-j " + c.Name
	at := slices.Index(rules, jump) // 0-based; -1 when missing
	if at < 0 {
		if o.place == jumpAfterPolicy {
			c.insertAt = jumpSlot(rules)
		}
		return fmt.Sprintf(markNoJump, o.builtin)
	}
	if o.misplaced != nil && o.misplaced(rules[:at]) { // chainplace.go
		return fmt.Sprintf(markMisplaced, o.builtin)
	}
	if o.place != jumpAfterPolicy {
		return ""
	}
	others := slices.Delete(slices.Clone(rules), at, at+1)
	c.insertAt = jumpSlot(others)
	want := len(others) // how many rules come first where the jump belongs
	if c.insertAt > 0 {
		want = c.insertAt - 1
	}
	if at != want {
		return fmt.Sprintf(markMisplaced, o.builtin)
	}
	return ""
}

// EnterNetNS locks the calling goroutine to its thread and moves the thread
// into the named network namespace, so that the kernel work done from this
// goroutine (netlink, the iptables it runs) happens there while the rest of
// the process (API clients) stays where it is. The returned function moves
// the thread back.
func EnterNetNS(name string) (func(), error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	target, err := netns.GetFromName(name)
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter network namespace %s: %w", name, err)
	}
	return func() {
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread() // only a thread back home may be reused
		}
		orig.Close()
	}, nil
}
