package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// DefaultPort is where `kosmos probe serve` answers, TCP and UDP.
const DefaultPort = 4890

// Server is the echo server of `kosmos probe serve`.
type Server struct {
	tcp net.Listener
	udp net.PacketConn
	wg  sync.WaitGroup
}

// Listen opens the TCP and UDP echo on port (all addresses) in the calling
// thread's network namespace; Serve answers.
func Listen(port int) (*Server, error) {
	addr := net.JoinHostPort("", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("probe server: %w", err)
	}
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("probe server: %w", err)
	}
	return &Server{tcp: l, udp: u}, nil
}

// Serve echoes until Close.
func (s *Server) Serve() {
	s.wg.Go(func() {
		buf := make([]byte, 512)
		for {
			n, from, err := s.udp.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			_, _ = s.udp.WriteTo(buf[:n], from)
		}
	})
	s.wg.Go(func() {
		for {
			c, err := s.tcp.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadBytes('\n')
				if err == nil && len(line) <= 512 {
					_, _ = c.Write(line)
				}
			}()
		}
	})
}

// Close stops the server.
func (s *Server) Close() error {
	err := errors.Join(s.tcp.Close(), s.udp.Close())
	s.wg.Wait()
	return err
}

// ErrICMPNotPermitted: neither a raw ICMP socket (CAP_NET_RAW) nor an
// unprivileged ping socket (net.ipv4.ping_group_range) may be opened.
var ErrICMPNotPermitted = errors.New("ICMP not permitted here")

// Send sends one probe to addr (port for TCP and UDP) and waits for its
// echo until ctx ends. It creates its sockets in the calling thread's
// network namespace. The error says what failed; for ICMP it is
// ErrICMPNotPermitted where no ICMP socket may be opened.
func Send(ctx context.Context, proto Proto, addr netip.Addr, port int) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	msg := []byte("kosmos-probe " + hex.EncodeToString(nonce) + "\n")
	switch proto {
	case TCP:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		got, err := bufio.NewReader(c).ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("no echo: %w", err)
		}
		if !bytes.Equal(got, msg) {
			return errors.New("wrong echo")
		}
		return nil
	case UDP:
		return sendUDP(ctx, deadline, addr, port, msg)
	case ICMP:
		return sendICMP(ctx, deadline, addr, nonce)
	}
	return fmt.Errorf("unknown protocol %q", proto)
}

// sendUDP sends the datagram up to every second (UDP may drop one) and
// waits for the echo. The socket is not connected: a server on a machine
// with several addresses may answer from another one than asked (a
// wildcard UDP listener replies from the route's source address); the
// nonce says the echo is ours.
func sendUDP(ctx context.Context, deadline time.Time, addr netip.Addr, port int, msg []byte) error {
	network := "udp4"
	if addr.Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port)))
	buf := make([]byte, 512)
	for {
		if _, err := c.WriteToUDP(msg, to); err != nil {
			return err
		}
		next := minTime(deadline, time.Now().Add(time.Second))
		for {
			_ = c.SetReadDeadline(next)
			n, _, err := c.ReadFromUDP(buf)
			if err == nil && bytes.Equal(buf[:n], msg) {
				return nil
			}
			if err == nil {
				continue // not our echo
			}
			if !os.IsTimeout(err) || time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("no echo: %w", err)
			}
			break // send again
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sendICMP sends echo requests every 300 ms until an echo reply with its
// id and payload comes back: through a raw socket where permitted, else
// through an unprivileged ping socket.
func sendICMP(ctx context.Context, deadline time.Time, addr netip.Addr, nonce []byte) error {
	network, proto, typ, reply := "ip4:icmp", 1, icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply)
	udpNet, listen := "udp4", "0.0.0.0"
	if addr.Is6() {
		network, proto, typ, reply, udpNet, listen = "ip6:ipv6-icmp", 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, "udp6", "::"
	}
	var dst net.Addr = &net.IPAddr{IP: addr.AsSlice()}
	c, err := icmp.ListenPacket(network, listen)
	if err != nil {
		if c, err = icmp.ListenPacket(udpNet, listen); err != nil {
			if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPROTONOSUPPORT) {
				return ErrICMPNotPermitted
			}
			return err
		}
		dst = &net.UDPAddr{IP: addr.AsSlice()} // the kernel sets the id of a ping socket
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	id := int(nonce[0])<<8 | int(nonce[1])
	buf := make([]byte, 1500)
	for seq := 1; ; seq++ {
		m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: nonce}}
		b, err := m.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, dst); err != nil {
			return err
		}
		next := minTime(deadline, time.Now().Add(300*time.Millisecond))
		for {
			_ = c.SetReadDeadline(next)
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				if !os.IsTimeout(err) || time.Now().After(deadline) || ctx.Err() != nil {
					return fmt.Errorf("no echo reply: %w", err)
				}
				break // send the next request
			}
			rm, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || rm.Type != reply || !sameHost(from, addr) {
				continue
			}
			if e, ok := rm.Body.(*icmp.Echo); ok && bytes.Equal(e.Data, nonce) {
				return nil
			}
		}
	}
}

func sameHost(a net.Addr, want netip.Addr) bool {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	got, ok := netip.AddrFromSlice(ip)
	return ok && got.Unmap() == want.Unmap()
}
