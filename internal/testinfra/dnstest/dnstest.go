// Package dnstest asks DNS questions for tests: one query, over UDP or
// TCP, answers flattened to text.
package dnstest

import (
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Query asks addr (host:port) for name's records of type qtype over
// network ("udp" or "tcp") and returns the response code and the answers
// as text: addresses for A/AAAA, "port target" for SRV, the joined strings
// for TXT, the name for PTR, the record itself otherwise.
func Query(network, addr, name string, qtype uint16) (rcode int, answers []string, err error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		return 0, nil, fmt.Errorf("query %s %s over %s to %s: %w", name, dns.TypeToString[qtype], network, addr, err)
	}
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			answers = append(answers, v.A.String())
		case *dns.AAAA:
			answers = append(answers, v.AAAA.String())
		case *dns.SRV:
			answers = append(answers, fmt.Sprintf("%d %s", v.Port, v.Target))
		case *dns.TXT:
			answers = append(answers, strings.Join(v.Txt, " "))
		case *dns.PTR:
			answers = append(answers, v.Ptr)
		default:
			answers = append(answers, rr.String())
		}
	}
	return r.Rcode, answers, nil
}
