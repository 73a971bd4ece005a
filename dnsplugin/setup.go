package dnsplugin

import (
	"strconv"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
)

func init() { plugin.Register(Name, setup) }

func setup(c *caddy.Controller) error {
	k, err := parse(c)
	if err != nil {
		return plugin.Error(Name, err)
	}
	c.OnStartup(k.Start)
	c.OnShutdown(k.Stop)
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		k.Next = next
		return k
	})
	return nil
}

// parse reads
//
//	kosmos [ZONES...] {
//	    kubeconfig PATH [CONTEXT]
//	    cluster NAME
//	    ttl SECONDS
//	    fallthrough [ZONES...]
//	}
func parse(c *caddy.Controller) (*Kosmos, error) {
	k := &Kosmos{TTL: 5}
	seen := false
	for c.Next() {
		if seen {
			return nil, plugin.ErrOnce
		}
		seen = true
		k.Zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		for c.NextBlock() {
			switch c.Val() {
			case "kubeconfig":
				args := c.RemainingArgs()
				if len(args) < 1 || len(args) > 2 {
					return nil, c.Errf("kubeconfig takes PATH [CONTEXT], got %d arguments", len(args))
				}
				k.Kubeconfig = args[0]
				if len(args) == 2 {
					k.Context = args[1]
				}
			case "cluster":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return nil, c.Errf("cluster takes one NAME, got %d arguments", len(args))
				}
				k.Cluster = args[0]
			case "ttl":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return nil, c.ArgErr()
				}
				t, err := strconv.Atoi(args[0])
				if err != nil || t < 0 || t > 3600 {
					return nil, c.Errf("ttl must be a number of seconds in [0, 3600], got %q", args[0])
				}
				k.TTL = uint32(t)
			case "fallthrough":
				k.Fall.SetZonesFromArgs(c.RemainingArgs())
			default:
				return nil, c.Errf("unknown property %q", c.Val())
			}
		}
	}
	return k, nil
}
