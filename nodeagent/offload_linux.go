package nodeagent

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The offloads are read and set with the SIOCETHTOOL ioctl's one-feature
// commands (struct ethtool_value), which every kernel the agent runs on
// answers for any device, software ones included. Each names one of the
// groups `ethtool -k` prints on its summary lines (tx-checksumming covers
// every checksum offload of the device, tcp-segmentation-offload every TSO
// kind); a set goes through the kernel's feature update, so the kernel
// still refuses what the device cannot do.
var ethtoolCmds = map[string]struct{ get, set uint32 }{
	FeatureRxChecksum: {unix.ETHTOOL_GRXCSUM, unix.ETHTOOL_SRXCSUM},
	FeatureTxChecksum: {unix.ETHTOOL_GTXCSUM, unix.ETHTOOL_STXCSUM},
	FeatureSG:         {unix.ETHTOOL_GSG, unix.ETHTOOL_SSG},
	FeatureTSO:        {unix.ETHTOOL_GTSO, unix.ETHTOOL_STSO},
	FeatureGSO:        {unix.ETHTOOL_GGSO, unix.ETHTOOL_SGSO},
	FeatureGRO:        {unix.ETHTOOL_GGRO, unix.ETHTOOL_SGRO},
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// ifreqData is struct ifreq with ifr_data: the name, then a pointer, padded
// to the union's size.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtool performs one SIOCETHTOOL command with an ethtool_value on dev,
// in the calling thread's network namespace.
func ethtool(dev string, cmd, data uint32) (uint32, error) {
	if len(dev) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("device name %q is too long", dev)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket for ethtool: %w", err)
	}
	defer unix.Close(fd)
	v := &ethtoolValue{cmd: cmd, data: data}
	var req ifreqData
	copy(req.name[:], dev)
	req.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}

// ReadOffload says whether feature (as `ethtool -k` names it, one of
// tunnelFeatures) is on for dev in the current network namespace.
func ReadOffload(dev, feature string) (bool, error) {
	c, ok := ethtoolCmds[feature]
	if !ok {
		return false, fmt.Errorf("read offload %s dev %s: not a feature the agent knows", feature, dev)
	}
	v, err := ethtool(dev, c.get, 0)
	if err != nil {
		return false, fmt.Errorf("read offload %s dev %s: %w", feature, dev, err)
	}
	return v != 0, nil
}

// SetOffload turns feature on or off for dev in the current network
// namespace (what `ethtool -K` does) and checks that the kernel took it.
func SetOffload(dev, feature string, on bool) error {
	o := Offload{Dev: dev, Feature: feature, On: on}
	c, ok := ethtoolCmds[feature]
	if !ok {
		return fmt.Errorf("set offload %s: not a feature the agent knows", o)
	}
	var data uint32
	if on {
		data = 1
	}
	if _, err := ethtool(dev, c.set, data); err != nil {
		return fmt.Errorf("set offload %s: %w", o, err)
	}
	switch got, err := ReadOffload(dev, feature); {
	case err != nil:
		return fmt.Errorf("set offload %s: %w", o, err)
	case got != on:
		return fmt.Errorf("set offload %s: the kernel keeps it %s (the device or another feature it depends on does not allow it)", o, onOff(got))
	}
	return nil
}

// readOffloads reads the settings the devices should hold (offloadsFor).
// One that cannot be read is left out: it compares as not read, and is not
// written (a device that answers no ethtool command has none to repair).
func readOffloads(links []Link) []Offload {
	var out []Offload
	for _, o := range offloadsFor(links) {
		on, err := ReadOffload(o.Dev, o.Feature)
		if err != nil {
			continue
		}
		o.On = on
		out = append(out, o)
	}
	return out
}

// writeOffload sets one setting, unless the device holds it already.
func writeOffload(o *Offload) error {
	if on, err := ReadOffload(o.Dev, o.Feature); err == nil && on == o.On {
		return nil
	}
	return SetOffload(o.Dev, o.Feature, o.On)
}
