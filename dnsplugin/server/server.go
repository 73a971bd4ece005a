// Package server is CoreDNS with its standard plugins plus the Kosmos plugin,
// as `kosmos dns` runs it, and as tests and benchmarks start it in process.
//
// # Plugin order
//
// CoreDNS orders a server's plugins by its directive list, not by the
// Corefile. The kosmos directive is inserted just after kubernetes: the
// kubernetes plugin answers the reverse zones first, so the address of a
// local Service or Pod always resolves to its cluster.local name whatever
// the multi-cluster objects say, and only the questions it passes on
// (fallthrough in-addr.arpa ip6.arpa) reach kosmos. The multi-cluster zone
// is not the kubernetes plugin's, so its questions reach kosmos unchanged;
// kosmos still comes before forward, and cache, metrics and the like wrap it
// as they wrap kubernetes.
//
// # Usage
//
//	server.Run([]string{"-conf", "Corefile"}) // as `kosmos dns -conf Corefile`
//
//	inst, err := server.Start(corefile)        // in process
//	defer server.Stop(inst)
package server

import (
	"errors"
	"os"
	"slices"
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // CoreDNS's standard plugins.
	"github.com/coredns/coredns/coremain"

	"kosmos.io/kosmos/dnsplugin"
)

func init() { insertDirective() }

// insertDirective puts the kosmos directive after kubernetes (or, in a
// build without kubernetes, before forward, else last).
func insertDirective() {
	if slices.Contains(dnsserver.Directives, dnsplugin.Name) {
		return
	}
	if i := slices.Index(dnsserver.Directives, "kubernetes"); i >= 0 {
		dnsserver.Directives = slices.Insert(dnsserver.Directives, i+1, dnsplugin.Name)
		return
	}
	if i := slices.Index(dnsserver.Directives, "forward"); i >= 0 {
		dnsserver.Directives = slices.Insert(dnsserver.Directives, i, dnsplugin.Name)
		return
	}
	dnsserver.Directives = append(dnsserver.Directives, dnsplugin.Name)
}

// Run is CoreDNS's main with args as its command line (without the program
// name): -conf FILE, -dns.port PORT, -plugins, -version, ... It returns when
// the server stops; CoreDNS exits the process on a fatal error.
func Run(args []string) {
	// coremain parses os.Args itself: hide the words before CoreDNS's own
	// flags (the "dns" subcommand).
	os.Args = append([]string{os.Args[0]}, args...)
	coremain.Run()
}

var startMu sync.Mutex

// Start runs a CoreDNS server from a Corefile in this process; Stop the
// instance with Stop when done. Listen on 127.0.0.1:0 to get a free port, and read it
// with Addrs.
func Start(corefile string) (*caddy.Instance, error) {
	startMu.Lock()
	defer startMu.Unlock()
	caddy.Quiet = true
	dnsserver.Quiet = true
	return caddy.Start(corefileInput(corefile))
}

// Stop stops an instance from Start: its servers, then the plugins'
// shutdown hooks (the kosmos plugin's watches end there).
func Stop(inst *caddy.Instance) error {
	err := inst.Stop()
	return errors.Join(append([]error{err}, inst.ShutdownCallbacks()...)...)
}

// Addrs returns the UDP and TCP addresses of the instance's first server.
func Addrs(inst *caddy.Instance) (udp, tcp string) {
	srvs := inst.Servers()
	if len(srvs) == 0 {
		return "", ""
	}
	if a := srvs[0].LocalAddr(); a != nil {
		udp = a.String()
	}
	if a := srvs[0].Addr(); a != nil {
		tcp = a.String()
	}
	return udp, tcp
}

type corefileInput string

func (c corefileInput) Body() []byte       { return []byte(c) }
func (c corefileInput) Path() string       { return "Corefile" }
func (c corefileInput) ServerType() string { return "dns" }
