package nodeagent

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Design notes: offloads of the agent's tunnel devices.
//
// What makes the kernel's VXLAN path fast is mostly what the kernel does by
// default for a software device: checksums left to the last moment
// (tx-checksumming), large TCP segments carried through the tunnel and cut
// only at the end (scatter-gather, tcp-segmentation-offload,
// generic-segmentation-offload), and decapsulated packets merged again
// before the stack sees them (generic-receive-offload, rx-checksumming).
// Someone who turns one of them off on a vx- device (a tuning script, a
// copied workaround) costs every tunnelled flow of the node: with all of
// them off, BenchmarkDataPlane measured the tunnel 4.9 to 8 times slower on
// this machine (vxlan/no-offloads). So these settings are compared state like the rest: read
// back on every pass with the ethtool ioctl (what `ethtool -k` prints) and
// set again when they differ; the write shows in the pass's changes (the
// NodeConfig's lastChanges) and in kosmos_agent_offload_repairs_total.
// A feature the device cannot change is not compared, and a write the
// kernel refuses is a warning (log, kosmos_agent_offload_refused_total, a
// note in the Applied condition), never a failed pass: a failed pass would
// hold back the WireGuard peer and route removal after it
// (offload_linux.go has the ioctls).
//
// Only the agent's own VXLAN devices are read or written; the underlay NIC,
// the pods' veths and any other device keep whatever their owners set.
//
// A device that is being added or recreated is not written: it starts with
// the kernel's defaults for a VXLAN device, which are these, and the next
// pass (the new device's netlink event starts one) compares them.
//
// Safety: tx-checksumming on VXLAN devices is the offload Calico turns off
// where kernels before 5.7 broke outer UDP checksums of packets that
// iptables MASQUERADE --random-fully rewrote. Kosmos's tunnels are
// masqueraded by no rule of its own (its MASQUERADE matches inner packets
// leaving vx- devices, not the underlay's UDP), and the agent only keeps the
// kernel's default; a node that must have it off is one whose kernel is
// broken, which this agent does not try to detect: there, `kosmos agent
// --leave-offloads` (LinuxKernel.LeaveOffloads) reads and writes none of
// them, and the node's own tooling sets what it needs.

// Offload is one offload feature of one of the agent's devices, named as
// `ethtool -k` prints it.
type Offload struct {
	Dev, Feature string
	On           bool
}

// Offload features the agent keeps on its VXLAN devices.
const (
	FeatureRxChecksum = "rx-checksumming"
	FeatureTxChecksum = "tx-checksumming"
	FeatureSG         = "scatter-gather"
	FeatureTSO        = "tcp-segmentation-offload"
	FeatureGSO        = "generic-segmentation-offload"
	FeatureGRO        = "generic-receive-offload"
)

// kernelFeatures are the kernel's feature bits (as ETH_SS_FEATURES names
// them) each group of tunnelFeatures stands for, as `ethtool -k` groups
// them and as the kernel's one-group set commands change them.
var kernelFeatures = map[string][]string{
	FeatureRxChecksum: {"rx-checksum"},
	FeatureTxChecksum: {"tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6", "tx-checksum-fcoe-crc", "tx-checksum-sctp"},
	FeatureSG:         {"tx-scatter-gather", "tx-scatter-gather-fraglist"},
	FeatureTSO:        {"tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation"},
	FeatureGSO:        {"tx-generic-segmentation"},
	FeatureGRO:        {"rx-gro"},
}

// featureBlock is one struct ethtool_get_features_block: 32 feature bits
// in four masks.
type featureBlock struct{ Available, Requested, Active, NeverChanged uint32 }

// groupOffloads turns a device's feature bits (names[i] is bit i of
// blocks) into its tunnel offload groups: a group is on when every feature
// of it the device can change (available and not never_changed) is active,
// so one drifted feature (tx-tcp6-segmentation alone off) turns it off. A
// group with no feature the device can change is left out: there is
// nothing to compare or write. It is pure.
func groupOffloads(dev string, names []string, blocks []featureBlock) []Offload {
	bit := func(i int, mask func(featureBlock) uint32) bool {
		return i/32 < len(blocks) && mask(blocks[i/32])&(1<<(i%32)) != 0
	}
	var out []Offload
	for _, g := range tunnelFeatures {
		changeable, on := 0, true
		for i, n := range names {
			if !slices.Contains(kernelFeatures[g], n) || !bit(i, func(b featureBlock) uint32 { return b.Available &^ b.NeverChanged }) {
				continue
			}
			changeable++
			on = on && bit(i, func(b featureBlock) uint32 { return b.Active })
		}
		if changeable > 0 {
			out = append(out, Offload{Dev: dev, Feature: g, On: on})
		}
	}
	return out
}

// OffloadRefusedError is an offload write the kernel refused: the device
// cannot change the feature (EOPNOTSUPP), or it kept it unchanged (a
// dependency). It is a warning of the pass, not a failure (apply): the
// device runs on as the kernel allows, and the rest of the pass, WireGuard
// peer and route removal included, goes on.
type OffloadRefusedError struct {
	Offload Offload
	Why     string
}

func (e *OffloadRefusedError) Error() string {
	return fmt.Sprintf("set offload %s: refused: %s", e.Offload, e.Why)
}

// errNoChange is what a write returns when the kernel held the value
// already (another pass or its owner set it meanwhile): not applied, not
// counted as a repair.
var errNoChange = errors.New("no change: the kernel holds it already")

// tunnelFeatures are the features offloadsFor wants on, in the order
// `ethtool -k` prints them.
var tunnelFeatures = []string{FeatureRxChecksum, FeatureTxChecksum, FeatureSG, FeatureTSO, FeatureGSO, FeatureGRO}

// offloadsFor returns the offload settings the given devices should hold,
// sorted by device and feature (sortOffloads): every feature of tunnelFeatures on, on each
// of them. Read reads exactly these (device, feature) pairs: which settings
// matter is a function of the devices alone, on both sides of the diff.
func offloadsFor(links []Link) []Offload {
	var out []Offload
	for _, l := range links {
		for _, f := range tunnelFeatures {
			out = append(out, Offload{Dev: l.Name, Feature: f, On: true})
		}
	}
	sortOffloads(out)
	return out
}

// sortOffloads sorts by device, then in the order of tunnelFeatures, which
// is also the order of their dependencies: the kernel drops TSO from a
// device whose tx-checksumming is turned off, and TSO and GSO from one
// without scatter-gather, so those are set again first.
func sortOffloads(xs []Offload) {
	rank := func(f string) int { return slices.Index(tunnelFeatures, f) }
	slices.SortFunc(xs, func(a, b Offload) int {
		return cmp.Or(cmp.Compare(a.Dev, b.Dev), cmp.Compare(rank(a.Feature), rank(b.Feature)), cmp.Compare(a.Feature, b.Feature))
	})
}

// diffOffloads sets each desired setting the kernel holds otherwise. A
// setting that was not read (its device is new) and one of a device being
// recreated are left to the kernel's defaults (see the design notes). A
// setting no longer desired is left as it is.
func diffOffloads(current, desired []Offload, recreated map[string]bool) []Op {
	cur := index(current, func(o Offload) string { return o.Dev + "/" + o.Feature })
	var ops []Op
	for _, d := range desired {
		c, ok := cur[d.Dev+"/"+d.Feature]
		if !ok || recreated[d.Dev] || c.On == d.On {
			continue
		}
		ops = append(ops, Op{Kind: OpSet, Offload: &d, Reason: fmt.Sprintf("%s → %s", onOff(c.On), onOff(d.On))})
	}
	return ops
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// writeOffloads prints sorted offloads one device a line, as State.String
// does: "offloads vx-bridge generic-receive-offload on …".
func writeOffloads(b *strings.Builder, xs []Offload) {
	for i, o := range xs {
		if i == 0 || xs[i-1].Dev != o.Dev {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(b, "offloads %s", o.Dev)
		}
		fmt.Fprintf(b, " %s %s", o.Feature, onOff(o.On))
	}
	if len(xs) > 0 {
		b.WriteString("\n")
	}
}

func (o Offload) String() string { return fmt.Sprintf("%s %s dev %s", o.Feature, onOff(o.On), o.Dev) }

// metricOffloadRepairs counts offload settings of the agent's devices found
// changed from outside and set again.
var metricOffloadRepairs = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "kosmos_agent_offload_repairs_total",
	Help: "Offload settings of the agent's tunnel devices found changed and set again, by feature (as ethtool -k names it).",
}, []string{"feature"})

// metricOffloadRefused counts offload writes the kernel refused
// (OffloadRefusedError).
var metricOffloadRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "kosmos_agent_offload_refused_total",
	Help: "Offload writes to the agent's tunnel devices that the kernel refused (the device cannot change the feature, or a dependency keeps it), by feature.",
}, []string{"feature"})

// countOffloadRefused counts the refused offload writes among a pass's
// warnings.
func countOffloadRefused(warnings []error) {
	for _, w := range warnings {
		if r := (*OffloadRefusedError)(nil); errors.As(w, &r) {
			metricOffloadRefused.WithLabelValues(r.Offload.Feature).Inc()
		}
	}
}

// countOffloadRepairs counts the offload writes of a pass.
func countOffloadRepairs(applied []Op) {
	for _, op := range applied {
		if op.Offload != nil {
			metricOffloadRepairs.WithLabelValues(op.Offload.Feature).Inc()
		}
	}
}
