//go:build !linux

package nodeagent

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// probeBatch is how many datagrams one recv reads at most.
const probeBatch = 64

// probeIO moves one socket's probe datagrams one at a time (batches are
// Linux's sendmmsg and recvmmsg); the API is the Linux one's.
type probeIO struct {
	c      *net.UDPConn
	rc     syscall.RawConn
	v4     bool
	rcvbuf int
	rx     [probeBatch]struct {
		buf  [64]byte
		n    int
		from netip.AddrPort
		at   time.Time
	}
	tx []struct {
		payload [probeLen]byte
		to      netip.AddrPort
	}
}

func newProbeIO(c *net.UDPConn, v4, _ bool) (*probeIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &probeIO{c: c, rc: rc, v4: v4}, nil
}

func (b *probeIO) SyscallConn() (syscall.RawConn, error) { return b.rc, nil }

func (b *probeIO) close() { b.c.Close() }

func (b *probeIO) reserve(want int) error {
	if want <= b.rcvbuf {
		return nil
	}
	if err := b.c.SetReadBuffer(want); err != nil {
		return err
	}
	b.rcvbuf = want
	return nil
}

func (b *probeIO) recv(wait bool) (int, error) {
	if wait {
		n, from, err := b.c.ReadFromUDPAddrPort(b.rx[0].buf[:])
		if err != nil {
			return 0, err
		}
		b.rx[0].n, b.rx[0].from, b.rx[0].at = n, from, time.Time{}
		return 1, nil
	}
	got := 0
	var rerr error
	err := b.rc.Read(func(fd uintptr) bool {
		for got < probeBatch {
			n, sa, err := syscall.Recvfrom(int(fd), b.rx[got].buf[:], syscall.MSG_DONTWAIT)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil {
				if !errors.Is(err, syscall.EAGAIN) {
					rerr = err
				}
				return true
			}
			r := &b.rx[got]
			r.n, r.at = n, time.Time{}
			switch sa := sa.(type) {
			case *syscall.SockaddrInet4:
				r.from = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
			case *syscall.SockaddrInet6:
				r.from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
			default:
				r.from = netip.AddrPort{}
			}
			got++
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	return got, rerr
}

func (b *probeIO) packet(i int) ([]byte, netip.AddrPort, time.Time) {
	r := &b.rx[i]
	return r.buf[:r.n], r.from, r.at
}

func (b *probeIO) add(payload []byte, to netip.AddrPort) bool {
	if b.v4 != to.Addr().Unmap().Is4() {
		return false
	}
	b.tx = append(b.tx, struct {
		payload [probeLen]byte
		to      netip.AddrPort
	}{to: to})
	copy(b.tx[len(b.tx)-1].payload[:], payload)
	return true
}

func (b *probeIO) flush() {
	for i := range b.tx {
		_, _ = b.c.WriteToUDPAddrPort(b.tx[i].payload[:], b.tx[i].to)
	}
	b.tx = b.tx[:0]
}
