package nodeagent

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reading: one ETHTOOL_GFEATURES per device (what `ethtool -k` prints),
// all of a Read's ioctls on one socket. It returns the kernel's feature
// bits with four masks each: available (the device may change it),
// requested, active and never_changed. A group of tunnelFeatures (one of
// the summary lines of `ethtool -k`) stands for the kernel features in
// kernelFeatures; the group reads as on when every one of those the device
// can change (available, not never_changed) is active, so a partial drift
// (only tx-tcp6-segmentation off) reads as off; a group none of whose
// features the device can change is left out, not compared, not written
// (groupOffloads, pure).
//
// Writing: the legacy one-group set commands (struct ethtool_value), which
// turn on or off every feature of the group that the device can change,
// through the kernel's feature update, which still refuses what the device
// or a dependency does not allow. A write the kernel refuses (EOPNOTSUPP,
// or read back still off) is an OffloadRefusedError: a warning of the pass,
// not a failure.
var ethtoolSetCmds = map[string]uint32{
	FeatureRxChecksum: unix.ETHTOOL_SRXCSUM,
	FeatureTxChecksum: unix.ETHTOOL_STXCSUM,
	FeatureSG:         unix.ETHTOOL_SSG,
	FeatureTSO:        unix.ETHTOOL_STSO,
	FeatureGSO:        unix.ETHTOOL_SGSO,
	FeatureGRO:        unix.ETHTOOL_SGRO,
}

// From linux/ethtool.h: the string set of feature names, and the length of
// one name.
const (
	ethSSFeatures = 4
	ethGStringLen = 32
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// ifreqData is struct ifreq with ifr_data: the name, then a pointer, padded
// to the union's size.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtoolSocket opens the socket a Read's or a write's ioctls go through,
// in the calling thread's network namespace.
func ethtoolSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket for ethtool: %w", err)
	}
	return fd, nil
}

// ethtoolIoctl performs one SIOCETHTOOL command on dev; data points at the
// command's struct, whose first word is the command.
func ethtoolIoctl(fd int, dev string, data unsafe.Pointer) error {
	if len(dev) >= unix.IFNAMSIZ {
		return fmt.Errorf("device name %q is too long", dev)
	}
	var req ifreqData
	copy(req.name[:], dev)
	req.data = data
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
	if errno != 0 {
		return errno
	}
	return nil
}

// featureNames reads the names of the kernel's feature bits (string set
// ETH_SS_FEATURES), the same for every device of a kernel.
func featureNames(fd int, dev string) ([]string, error) {
	// struct ethtool_sset_info: cmd, reserved, sset_mask (u64), data[1].
	info := make([]uint32, 5)
	info[0] = unix.ETHTOOL_GSSET_INFO
	*(*uint64)(unsafe.Pointer(&info[2])) = 1 << ethSSFeatures
	err := ethtoolIoctl(fd, dev, unsafe.Pointer(&info[0]))
	runtime.KeepAlive(info)
	if err != nil {
		return nil, fmt.Errorf("feature count: %w", err)
	}
	n := int(info[4])
	if *(*uint64)(unsafe.Pointer(&info[2])) == 0 || n <= 0 || n > 4096 {
		return nil, errors.New("feature count: the kernel reports none")
	}
	// struct ethtool_gstrings: cmd, string_set, len, data[len * 32].
	buf := make([]uint32, 3+n*ethGStringLen/4)
	buf[0], buf[1], buf[2] = unix.ETHTOOL_GSTRINGS, ethSSFeatures, uint32(n)
	err = ethtoolIoctl(fd, dev, unsafe.Pointer(&buf[0]))
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&buf[3])), n*ethGStringLen)
	names := make([]string, n)
	for i := range names {
		s := raw[i*ethGStringLen : (i+1)*ethGStringLen]
		names[i] = unix.ByteSliceToString(s)
	}
	runtime.KeepAlive(buf)
	if err != nil {
		return nil, fmt.Errorf("feature names: %w", err)
	}
	return names, nil
}

// readFeatures reads dev's feature blocks with ETHTOOL_GFEATURES.
func readFeatures(fd int, dev string, count int) ([]featureBlock, error) {
	size := (count + 31) / 32
	// struct ethtool_gfeatures: cmd, size, then size blocks of four words.
	buf := make([]uint32, 2+4*size)
	buf[0], buf[1] = unix.ETHTOOL_GFEATURES, uint32(size)
	err := ethtoolIoctl(fd, dev, unsafe.Pointer(&buf[0]))
	runtime.KeepAlive(buf)
	if err != nil {
		return nil, err
	}
	blocks := make([]featureBlock, size)
	for i := range blocks {
		w := buf[2+4*i:]
		blocks[i] = featureBlock{Available: w[0], Requested: w[1], Active: w[2], NeverChanged: w[3]}
	}
	return blocks, nil
}

// readDevOffloads reads the tunnel groups of dev (groupOffloads).
func readDevOffloads(fd int, dev string, names []string) ([]Offload, error) {
	blocks, err := readFeatures(fd, dev, len(names))
	if err != nil {
		return nil, err
	}
	return groupOffloads(dev, names, blocks), nil
}

// ReadOffload says whether feature (as `ethtool -k` names it, one of
// tunnelFeatures) is on for dev in the current network namespace: every
// kernel feature of the group that dev can change is active. A group dev
// cannot change is an error.
func ReadOffload(dev, feature string) (bool, error) {
	fd, err := ethtoolSocket()
	if err != nil {
		return false, fmt.Errorf("read offload %s dev %s: %w", feature, dev, err)
	}
	defer unix.Close(fd)
	return readOffload(fd, dev, feature)
}

func readOffload(fd int, dev, feature string) (bool, error) {
	names, err := featureNames(fd, dev)
	if err != nil {
		return false, fmt.Errorf("read offload %s dev %s: %w", feature, dev, err)
	}
	got, err := readDevOffloads(fd, dev, names)
	if err != nil {
		return false, fmt.Errorf("read offload %s dev %s: %w", feature, dev, err)
	}
	for _, o := range got {
		if o.Feature == feature {
			return o.On, nil
		}
	}
	return false, fmt.Errorf("read offload %s dev %s: the device cannot change it", feature, dev)
}

// SetOffload turns feature on or off for dev in the current network
// namespace (what `ethtool -K` does) and checks that the kernel took it.
// The kernel's refusal (EOPNOTSUPP, or read back unchanged) is an
// *OffloadRefusedError.
func SetOffload(dev, feature string, on bool) error {
	o := Offload{Dev: dev, Feature: feature, On: on}
	cmd, ok := ethtoolSetCmds[feature]
	if !ok {
		return fmt.Errorf("set offload %s: not a feature the agent knows", o)
	}
	fd, err := ethtoolSocket()
	if err != nil {
		return fmt.Errorf("set offload %s: %w", o, err)
	}
	defer unix.Close(fd)
	v := &ethtoolValue{cmd: cmd}
	if on {
		v.data = 1
	}
	err = ethtoolIoctl(fd, dev, unsafe.Pointer(v))
	runtime.KeepAlive(v)
	switch {
	case errors.Is(err, unix.EOPNOTSUPP):
		return &OffloadRefusedError{Offload: o, Why: "the device does not support changing it (EOPNOTSUPP)"}
	case err != nil:
		return fmt.Errorf("set offload %s: %w", o, err)
	}
	switch got, err := readOffload(fd, dev, feature); {
	case err != nil:
		return fmt.Errorf("set offload %s: %w", o, err)
	case got != on:
		return &OffloadRefusedError{Offload: o, Why: fmt.Sprintf("the kernel keeps it %s (the device or another feature it depends on does not allow it)", onOff(got))}
	}
	return nil
}

// readOffloads reads the settings the devices should hold (offloadsFor),
// on one socket. A device that cannot be read and a group the device
// cannot change are left out: they compare as not read and are not
// written.
func readOffloads(links []Link) []Offload {
	if len(links) == 0 {
		return nil
	}
	fd, err := ethtoolSocket()
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var names []string
	var out []Offload
	for _, l := range links {
		if names == nil {
			if names, err = featureNames(fd, l.Name); err != nil {
				names = nil
				continue
			}
		}
		got, err := readDevOffloads(fd, l.Name, names)
		if err != nil {
			continue
		}
		out = append(out, got...)
	}
	sortOffloads(out)
	return out
}

// writeOffload sets one setting, unless the device holds it already: then
// it returns errNoChange, and the pass does not count it.
func writeOffload(o *Offload) error {
	if on, err := ReadOffload(o.Dev, o.Feature); err == nil && on == o.On {
		return errNoChange
	}
	return SetOffload(o.Dev, o.Feature, o.On)
}
