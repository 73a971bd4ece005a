package nodeagent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// probeBatch is how many datagrams one sendmmsg or recvmmsg call moves.
const probeBatch = 64

// probeBufLen is a receive buffer: a longer datagram is truncated, and no
// probe.
const probeBufLen = 64

// mmsghdr is the kernel's struct mmsghdr (the Go layout pads it like C).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// probeIO moves one socket's probe datagrams in batches. Its buffers are
// allocated once and reused, and the kernel holds pointers into them only
// during a call: it is used by one goroutine at a time.
//
// A prober's socket is detached from the Go runtime's poller: nothing
// waits on it (each round reads what is queued), and a socket the poller
// watches wakes the poller's thread at every reply that arrives, which
// was half the cost of probing. The socket is then a bare descriptor (a
// duplicate of the one the net.UDPConn had, which is closed), used
// without waiting.
type probeIO struct {
	rc     syscall.RawConn // attached: the poller waits for it
	fd     int             // detached, else -1
	v4     bool
	rcvbuf int // asked for, 0 until reserve

	rx     [probeBatch]mmsghdr
	rxIov  [probeBatch]unix.Iovec
	rxName [probeBatch]unix.RawSockaddrInet6
	rxBuf  [probeBatch][probeBufLen]byte
	rxOOB  [probeBatch][64]byte

	tx     [probeBatch]mmsghdr
	txIov  [probeBatch]unix.Iovec
	txName [probeBatch]unix.RawSockaddrInet6
	txBuf  [probeBatch][probeLen]byte
	ntx    int
}

// newProbeIO prepares the batches of c, a socket of the family v4 says.
// A prober's socket is detached (c is closed; close closes the socket)
// and asks the kernel for each datagram's receive time.
func newProbeIO(c *net.UDPConn, v4, prober bool) (*probeIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &probeIO{rc: rc, fd: -1, v4: v4}
	if prober {
		var derr error
		if err := rc.Control(func(fd uintptr) {
			b.fd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		}); err != nil || derr != nil {
			return nil, errors.Join(err, derr)
		}
		b.rc = nil
		c.Close()
		// Without timestamps a reply's round trip is measured when it
		// is read.
		_ = unix.SetsockoptInt(b.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}
	for i := range probeBatch {
		b.rxIov[i].Base = &b.rxBuf[i][0]
		b.rxIov[i].SetLen(probeBufLen)
		b.rx[i].hdr.Name = (*byte)(unsafe.Pointer(&b.rxName[i]))
		b.rx[i].hdr.Iov = &b.rxIov[i]
		b.rx[i].hdr.SetIovlen(1)
		b.rx[i].hdr.Control = &b.rxOOB[i][0]
		b.txIov[i].Base = &b.txBuf[i][0]
		b.txIov[i].SetLen(probeLen)
		b.tx[i].hdr.Name = (*byte)(unsafe.Pointer(&b.txName[i]))
		b.tx[i].hdr.Iov = &b.txIov[i]
		b.tx[i].hdr.SetIovlen(1)
	}
	return b, nil
}

// SyscallConn gives the socket to HAOptions.DeviceGone.
func (b *probeIO) SyscallConn() (syscall.RawConn, error) {
	if b.fd < 0 {
		return b.rc, nil
	}
	return fdConn(b.fd), nil
}

// close closes a detached socket (an attached one closes with its
// net.UDPConn).
func (b *probeIO) close() {
	if b.fd >= 0 {
		_ = unix.Close(b.fd)
		b.fd = -1
	}
}

// control runs f on the socket's descriptor.
func (b *probeIO) control(f func(fd uintptr)) {
	if b.fd >= 0 {
		f(uintptr(b.fd))
		return
	}
	_ = b.rc.Control(f)
}

// io runs f on the socket's descriptor until it is done: an attached
// socket waits in the poller while f says not done, a detached one, for
// writes only, in poll(2) for up to a second (the kernel's send buffer
// full), then gives up.
func (b *probeIO) io(write bool, f func(fd uintptr) bool) error {
	switch {
	case b.fd < 0 && write:
		return b.rc.Write(f)
	case b.fd < 0:
		return b.rc.Read(f)
	}
	for !f(uintptr(b.fd)) {
		if !write {
			return nil
		}
		pfd := []unix.PollFd{{Fd: int32(b.fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(pfd, 1000); err != nil && err != unix.EINTR || err == nil && n == 0 {
			return errors.New("probe socket not writable for a second")
		}
	}
	return nil
}

// fdConn is a detached socket as a syscall.RawConn: Control only.
type fdConn int

func (c fdConn) Control(f func(fd uintptr)) error  { f(uintptr(c)); return nil }
func (c fdConn) Read(func(fd uintptr) bool) error  { return errors.ErrUnsupported }
func (c fdConn) Write(func(fd uintptr) bool) error { return errors.ErrUnsupported }

// reserve sizes the receive buffer for want bytes (probeRcvBuf), beyond
// net.core.rmem_max when the agent may (CAP_NET_ADMIN); it only grows. A
// buffer the kernel refuses is an error (the caller logs it once: replies
// that overflow the buffer settle as misses); the size is tried again on
// the next growth.
func (b *probeIO) reserve(want int) error {
	if want <= b.rcvbuf {
		return nil
	}
	var err error
	b.control(func(fd uintptr) {
		if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want); err != nil {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, want)
		}
	})
	if err != nil {
		return fmt.Errorf("receive buffer of %d bytes for the probes' replies: %w", want, err)
	}
	b.rcvbuf = want
	return nil
}

// recv reads the datagrams queued, up to probeBatch, and returns how many;
// with wait (attached sockets only) it waits for the first one, else it
// returns 0 when none is queued.
func (b *probeIO) recv(wait bool) (int, error) {
	for i := range b.rx {
		b.rx[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.rx[i].hdr.SetControllen(len(b.rxOOB[i]))
		b.rx[i].hdr.Flags = 0
	}
	var n int
	var errno syscall.Errno
	err := b.io(false, func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rx[0])), probeBatch, unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case 0:
				n = int(r)
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return !wait
			}
			errno = e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// packet is the i-th datagram recv read: its payload (nil when
// truncated), its source and its kernel receive time (zero without).
func (b *probeIO) packet(i int) (payload []byte, from netip.AddrPort, at time.Time) {
	m := &b.rx[i]
	if m.hdr.Flags&unix.MSG_TRUNC == 0 && m.n <= probeBufLen {
		payload = b.rxBuf[i][:m.n]
	}
	from = sockaddrAddrPort(&b.rxName[i], m.hdr.Namelen)
	at = rxStamp(b.rxOOB[i][:min(int(m.hdr.Controllen), len(b.rxOOB[i]))])
	return payload, from, at
}

// add queues a datagram of probeLen bytes to be sent to to, sending the
// batch first when it is full; false when to is no address of the
// socket's family (nothing is sent).
func (b *probeIO) add(payload []byte, to netip.AddrPort) bool {
	if b.ntx == probeBatch {
		b.flush()
	}
	n, ok := putSockaddr(&b.txName[b.ntx], to, b.v4)
	if !ok {
		return false
	}
	b.tx[b.ntx].hdr.Namelen = n
	copy(b.txBuf[b.ntx][:], payload)
	b.ntx++
	return true
}

// flush sends the queued datagrams. A datagram the kernel refuses (no
// route, device gone) is dropped, as one send of it would be: its probe is
// a miss at its timeout.
func (b *probeIO) flush() {
	for sent := 0; sent < b.ntx; {
		var n int
		var errno syscall.Errno
		err := b.io(true, func(fd uintptr) bool {
			for {
				r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.tx[sent])), uintptr(b.ntx-sent), 0, 0, 0)
				switch e {
				case 0:
					n = int(r)
					return true
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false
				}
				errno = e
				return true
			}
		})
		if err != nil {
			break // closed, or not writable
		}
		if errno != 0 {
			n = 1 // the first datagram left was refused
		}
		sent += n
	}
	b.ntx = 0
}

// sockaddrAddrPort is the address of a raw socket address of length n
// (an IPv6 scope as a numeric zone); invalid when it is neither family.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch {
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), netPort(&sa4.Port))
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, netPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// putSockaddr writes the raw socket address of to for a socket of the
// family v4 says and returns its length; false when to does not fit.
func putSockaddr(sa *unix.RawSockaddrInet6, to netip.AddrPort, v4 bool) (uint32, bool) {
	a := to.Addr()
	if v4 {
		a = a.Unmap()
		if !a.Is4() {
			return 0, false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		putNetPort(&sa4.Port, to.Port())
		return unix.SizeofSockaddrInet4, true
	}
	if !a.IsValid() {
		return 0, false
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	if z := a.Zone(); z != "" {
		id, err := strconv.ParseUint(z, 10, 32)
		if err != nil {
			ifi, err := net.InterfaceByName(z)
			if err != nil {
				return 0, false
			}
			id = uint64(ifi.Index)
		}
		sa.Scope_id = uint32(id)
	}
	putNetPort(&sa.Port, to.Port())
	return unix.SizeofSockaddrInet6, true
}

// netPort reads a port in network byte order.
func netPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// putNetPort writes a port in network byte order.
func putNetPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// rxStamp is the receive time in a datagram's control messages
// (SCM_TIMESTAMPNS); zero when there is none.
func rxStamp(oob []byte) time.Time {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(oob) {
			return time.Time{}
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return time.Unix(ts.Unix())
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return time.Time{}
}
