package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kosmos.io/kosmos/internal/component"
	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/nodeagent"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// agentHelp is the long help of the command.
const agentHelp = `Agent applies a NodeConfig to the kernel of the network namespace it runs in:
VXLAN devices (vx-*), their addresses, routes (protocol 75), static FDB and
permanent neighbour entries, the forwarding sysctls of its devices, and
rules in its own chains (KOSMOS-PREROUTING and KOSMOS-POSTROUTING for NAT,
KOSMOS-NOMASQ keeping the CNI's masquerade off traffic to other clusters,
KOSMOS-FORWARD appended to FORWARD, KOSMOS-INPUT guarding the VXLAN ports,
KOSMOS-NOTRACK-IN and -OUT keeping the tunnels' own UDP out of conntrack),
and the ipsets those rules match (KOSMOS-PEER*, KOSMOS-WGPEER*, KOSMOS-RANGE*:
the peers and known ranges, one lookup per packet). It touches nothing else: a route to a destination another owner routes is
refused and reported, never replaced. A config that fails validation
(default or host-overlapping destinations among others) is refused whole and
the kernel keeps its last good state.
Applying the same config twice makes no change.

A NodeConfig with spec.peers (the shared contract) lists only what is the
node's own; the agent adds the routes, FDB and neighbour entries it derives
from the ClusterPeers objects of its cluster (one per remote cluster, or
shard of one). A NodeConfig without it (written by the earlier release) is
applied as it is.

With --node NAME it follows the NodeConfig of that name and the ClusterPeers
objects in the API server (in-cluster credentials, or --kubeconfig), applies
every change, tears everything down when the NodeConfig is deleted, and
writes the outcome to the NodeConfig's status (conditions Applied and Ready,
observedGeneration, lastChanges, contract Shared and the generation of each
ClusterPeers object applied, and status.gateways: the gateway candidate it
sends through per Gateway-mode cluster). /healthz, /readyz and /metrics are
served on --health-addr.

Gateway HA: the agent answers UDP probes on --probe-port (default 4801) of
its tunnel device addresses, and probes every --probe-interval each gateway
candidate it may send through, over the tunnel (each probing socket bound to
its tunnel device). A probe is a miss when no reply came within
--probe-timeout (default 500ms, at most 10s; it may exceed the interval, so
links with a long round trip work: several probes are then in flight). After --probe-down
misses in a row it moves its routes to the next live candidate (failover
takes about --probe-timeout plus --probe-down minus one intervals); it moves
back to an earlier one only once that one has answered --probe-up probes in
a row and stayed up for --failback-hold. --probe-interval 0 turns probing and
failover off (routes then follow the plan's first candidate); the agent
still answers the probes of other nodes.

--node-config FILE reads a NodeConfig and, as further YAML documents of the
same file, the ClusterPeers it is completed from. With --node-config alone it
keeps running: it re-reads the file and repairs
drift on every resync period and on every route or link change in the kernel,
so a route deleted by hand is back within moments. --once applies the file and
exits (0 applied, 1 refused or failed); --teardown removes everything the agent
owns. These serve to debug a node by hand and to test the agent without an API
server.

WireGuard: the agent keeps the node's WireGuard private key in --state-dir
(wireguard.key, mode 0600; made on first start, never printed) and reports
the public key in status.wireGuard.publicKey (--wireguard-public-key prints
it and exits). A NodeConfig with spec.wireGuard gets a WireGuard device (the
kernel's where the kernel has WireGuard, else wireguard-go over a TUN device
inside the agent, which must then keep running: --once refuses it), a policy rule (priority 4876) sending UDP to
the cross-cluster VXLAN ports into table 4876, and there a route through the
device and a blackhole behind it for each encrypted peer's underlay address.
To rotate the key: --rotate-wireguard-key writes the next key
(wireguard.next.key) and prints its public key. The running agent watches
--state-dir and takes the file up at once (not at its next resync): it
publishes it (status.wireGuard.nextPublicKey) and keeps the current key; once every peer
holds the next key (a handshake on the rotation device vx-wg1, port + 1) it
moves its routes there, makes the next key its key and moves back: nothing is
lost on the way (README, "Encryption").`

// agentFlags are the agent command's flags.
type agentFlags struct {
	file, node, kubeconfig, healthAddr, netns string
	once, teardown                            bool
	resync                                    time.Duration
	stateDir                                  string
	printKey, rotateKey                       bool
	ha                                        haFlags
	leaveOffloads                             bool
	// wgRotationTimeout is how long a key rotation waits for every peer
	// before it goes on without the dead ones (never a live one).
	wgRotationTimeout time.Duration
}

// maxProbeTimeout bounds --probe-timeout: the probes outstanding (one per
// candidate per interval until it times out) and the failover time grow
// with it.
const maxProbeTimeout = 10 * time.Second

// haFlags tune gateway HA probing.
type haFlags struct {
	port, down, up int
	interval, hold time.Duration
	timeout        time.Duration
}

// newHA returns the prober the flags ask for, its sockets in the current
// network namespace; with probing off (--probe-interval 0) a passive one
// that only answers the probes of other nodes.
func (f haFlags) newHA(log *slog.Logger) (*nodeagent.HA, error) {
	if f.port < 1 || f.port > 65535 {
		return nil, fmt.Errorf("agent: --probe-port %d is out of range 1 to 65535", f.port)
	}
	if f.timeout < 0 {
		return nil, fmt.Errorf("agent: --probe-timeout %v is negative", f.timeout)
	}
	if f.timeout > maxProbeTimeout {
		return nil, fmt.Errorf("agent: --probe-timeout %v is above %v: probes are kept until they time out, and a failover would take longer than that", f.timeout, maxProbeTimeout)
	}
	listen, err := nodeagent.ListenHere()
	if err != nil {
		return nil, err
	}
	return nodeagent.NewHA(nodeagent.HAOptions{
		Port: f.port, Interval: f.interval, Timeout: f.timeout, Passive: f.interval <= 0,
		Log: log, Listen: listen, BindDevice: nodeagent.BindToDevice, DeviceGone: nodeagent.DeviceGone,
		Failover: nodeagent.FailoverConfig{Down: f.down, Up: f.up, Hold: f.hold},
	}), nil
}

// check refuses flags that exclude each other or name no NodeConfig.
func (f agentFlags) check() error {
	switch {
	case f.printKey && f.rotateKey:
		return errors.New("agent: --wireguard-public-key and --rotate-wireguard-key exclude each other")
	case f.printKey || f.rotateKey:
		return nil
	case f.once && f.teardown:
		return errors.New("agent: --once and --teardown exclude each other")
	case f.file != "" && f.node != "":
		return errors.New("agent: --node-config and --node exclude each other")
	case !f.teardown && f.file == "" && f.node == "":
		return errors.New("agent: say where the NodeConfig comes from: --node NAME (or $NODE_NAME) for the API server, or --node-config FILE")
	case f.once && f.file == "":
		return errors.New("agent: --once needs --node-config FILE")
	}
	return nil
}

func newAgentCommand() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Make this node's kernel hold its ClusterLink NodeConfig",
		Long:  agentHelp,
		Example: `  kosmos agent --node "$NODE_NAME"
  kosmos agent --node node1 --kubeconfig ~/.kube/config
  kosmos agent --node-config node1.yaml --once
  ip netns exec node1 kosmos agent --node-config node1.yaml --once
  kosmos agent --node-config node1.yaml --resync 5s
  kosmos agent --teardown`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgentCommand(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", os.Getenv("NODE_NAME"), "follow the NodeConfig of this node in the API server (default $NODE_NAME)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for --node (default: in-cluster credentials)")
	fl.StringVar(&f.healthAddr, "health-addr", ":9441", "address of /healthz, /readyz and /metrics with --node (empty: off)")
	fl.StringVar(&f.netns, "netns", "", "do the kernel work in this named network namespace, API traffic from the current one (tests, the sandbox)")
	fl.StringVar(&f.file, "node-config", "", "NodeConfig file to apply (with --once)")
	fl.BoolVar(&f.once, "once", false, "apply the NodeConfig file and exit")
	fl.DurationVar(&f.resync, "resync", 10*time.Second, "period of the full repair pass when running continuously")
	fl.BoolVar(&f.teardown, "teardown", false, "remove every device, route, entry and chain the agent owns, and exit")
	fl.StringVar(&f.stateDir, "state-dir", "/var/lib/kosmos/agent", "directory of the node's WireGuard private key (wireguard.key, 0600); the running agent watches it and takes a key file written or removed there up at once")
	fl.BoolVar(&f.printKey, "wireguard-public-key", false, "print the node's WireGuard public key (making the key pair when there is none) and exit")
	fl.BoolVar(&f.rotateKey, "rotate-wireguard-key", false, "start a lossless rotation of the node's WireGuard key: write the next key in --state-dir, print its public key and exit; the running agent takes it up at once and hands over to it")
	fl.IntVar(&f.ha.port, "probe-port", nodeagent.DefaultProbePort, "UDP port of the gateway HA probes (answered on the tunnel device addresses)")
	fl.DurationVar(&f.ha.interval, "probe-interval", 100*time.Millisecond, "period of the gateway candidate probes (0: no probing, no failover; probes of others are still answered)")
	fl.DurationVar(&f.ha.timeout, "probe-timeout", nodeagent.DefaultProbeTimeout, "how long a gateway probe waits for its reply before it counts as a miss (may exceed --probe-interval; at most 10s)")
	fl.IntVar(&f.ha.down, "probe-down", 3, "consecutive missed probes that take a gateway candidate down")
	fl.IntVar(&f.ha.up, "probe-up", 3, "consecutive answered probes that bring a gateway candidate back up")
	fl.DurationVar(&f.ha.hold, "failback-hold", 3*time.Second, "how long an earlier gateway candidate must be up before traffic moves back to it")
	fl.DurationVar(&f.wgRotationTimeout, "wireguard-rotation-timeout", 2*time.Minute, "how long a WireGuard key rotation waits for a handshake from every peer on the rotation device before it promotes without the peers silent for 3 minutes (a live peer is waited for beyond it, and reported)")
	fl.BoolVar(&f.leaveOffloads, "leave-offloads", false, "neither read nor set the offloads (checksums, SG, TSO, GSO, GRO) of the agent's VXLAN devices: for a node whose kernel or NIC needs one off")
	return cmd
}

// runAgentCommand enters the network namespace, if any, then follows the API
// server or a file, or applies once, or tears down.
func runAgentCommand(ctx context.Context, out io.Writer, f agentFlags) error {
	if err := f.check(); err != nil {
		return &exitError{exitError2, err}
	}
	if f.netns != "" {
		leave, err := nodeagent.EnterNetNS(f.netns)
		if err != nil {
			return &exitError{exitError2, err}
		}
		defer leave()
	}
	if f.printKey || f.rotateKey {
		load := nodeagent.LoadOrCreateWireGuardKey
		if f.rotateKey {
			load = nodeagent.RotateWireGuardKey
		}
		key, err := load(f.stateDir)
		if err != nil {
			return &exitError{exitError2, err}
		}
		fmt.Fprintln(out, key.PublicKey())
		return nil
	}
	k, err := nodeagent.NewLinuxKernel()
	if err != nil {
		return &exitError{exitError2, err}
	}
	k.LeaveOffloads = f.leaveOffloads
	if f.node != "" && !f.teardown || !f.once && !f.teardown {
		key, err := nodeagent.LoadOrCreateWireGuardKey(f.stateDir)
		if err != nil {
			return &exitError{exitError2, err}
		}
		if f.node != "" {
			return runAgentAPI(ctx, k, f.node, f.kubeconfig, f.resync, f.healthAddr, key, f.stateDir, f.wgRotationTimeout, f.ha)
		}
		return runAgent(ctx, k, f.file, f.resync, key, f.stateDir, f.wgRotationTimeout, f.ha)
	}
	var res nodeagent.Result
	if f.teardown {
		res, err = nodeagent.Teardown(k)
		err = errors.Join(err, nodeagent.TeardownWireGuard(), nodeagent.TeardownTransit())
	} else {
		transit := &nodeagent.TransitRouting{}
		spec, lerr := composeFile(f.file, nil, transit)
		if lerr != nil {
			return &exitError{exitInvalid, lerr}
		}
		if spec.WireGuard != nil {
			return &exitError{exitInvalid, errors.New("agent: the NodeConfig asks for WireGuard; its userspace device lives in the agent, which must keep running: drop --once")}
		}
		res, err = nodeagent.Set(k, spec)
		err = errors.Join(err, transit.Settle(spec, err))
	}
	for _, op := range res.Applied {
		fmt.Fprintln(out, op)
	}
	fmt.Fprintf(out, "agent: %d change(s) applied\n", len(res.Applied))
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	return nil
}

// runAgent keeps the kernel matching the file until SIGINT or SIGTERM.
func runAgent(parent context.Context, k *nodeagent.LinuxKernel, file string, resync time.Duration, key *nodeagent.WireGuardKey, stateDir string, wgRotationTimeout time.Duration, haf haFlags) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	changes, err := nodeagent.Subscribe(ctx)
	if err != nil {
		return &exitError{exitError2, err}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	keys, err := nodeagent.WatchStateDir(ctx, stateDir, log)
	if err != nil {
		return &exitError{exitError2, err}
	}
	changes = nodeagent.Merge(ctx, changes, keys)
	wg := nodeagent.NewWireGuard(key, stateDir, log)
	wg.SetRotationTimeout(wgRotationTimeout)
	defer wg.Close()
	ha, err := haf.newHA(log)
	if err != nil {
		return &exitError{exitError2, err}
	}
	if ha != nil {
		go ha.Run(ctx)
		changes = nodeagent.Merge(ctx, changes, ha.Events())
	}
	log.Info("agent running", "nodeConfig", file, "resync", resync, "probeInterval", haf.interval, "wireGuardPublicKey", key.PublicKey())
	transit := &nodeagent.TransitRouting{}
	nodeagent.Run(ctx, k, func() (*v1alpha1.NodeConfigSpec, error) { return composeFile(file, ha, transit) },
		nodeagent.Options{Resync: resync, Changes: nodeagent.Merge(ctx, changes, wg.Events()), Log: log, Before: wg.Sync, After: afterPass(wg, transit, log), Moves: ha.Moves()})
	return nil
}

// composeFile reads a NodeConfig file (with the ClusterPeers documents it
// holds) and makes the config complete, following the gateway choice of
// ha when it is not nil, and records the composition's transit routing in
// transit (when not nil).
func composeFile(file string, ha *nodeagent.HA, transit *nodeagent.TransitRouting) (*v1alpha1.NodeConfigSpec, error) {
	nc, peers, err := nodeagent.LoadConfigFile(file)
	if err != nil {
		return nil, err
	}
	var choice peering.Choice
	if ha != nil {
		choice, _ = ha.Choice()
	}
	c, err := nodeagent.ComposeWith(nc, peers, nil, choice)
	if err != nil {
		return nil, err
	}
	if ha != nil {
		ha.Update(c.Groups, nodeagent.DeviceAddrs(c.Spec))
	}
	if transit != nil {
		transit.Want(c.Transit)
	}
	return c.Spec, nil
}

// runAgentAPI follows this node's NodeConfig in the API server until SIGINT
// or SIGTERM.
func runAgentAPI(parent context.Context, k *nodeagent.LinuxKernel, node, kubeconfig string, resync time.Duration, healthAddr string, key *nodeagent.WireGuardKey, stateDir string, wgRotationTimeout time.Duration, haf haFlags) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return &exitError{exitError2, err}
	}
	src, err := nodeagent.NewAPISource(cfg, node, log)
	if err != nil {
		return &exitError{exitError2, err}
	}
	changes, err := nodeagent.Subscribe(ctx)
	if err != nil {
		return &exitError{exitError2, err}
	}
	keys, err := nodeagent.WatchStateDir(ctx, stateDir, log)
	if err != nil {
		return &exitError{exitError2, err}
	}
	changes = nodeagent.Merge(ctx, changes, keys)
	wg := nodeagent.NewWireGuard(key, stateDir, log)
	wg.SetRotationTimeout(wgRotationTimeout)
	defer wg.Close()
	src.WireGuardStatus = wg.Status
	transit := &nodeagent.TransitRouting{}
	src.Transit = transit
	ha, err := haf.newHA(log)
	if err != nil {
		return &exitError{exitError2, err}
	}
	if ha != nil {
		src.UseHA(ha)
		go ha.Run(ctx)
		changes = nodeagent.Merge(ctx, changes, ha.Events())
	}
	var ready atomic.Bool
	go src.Watch(ctx)
	report := src.Report(ctx)
	log.Info("agent running", "node", node, "apiServer", cfg.Host, "resync", resync)
	err = component.Run(ctx, component.Options{Name: "kosmos-agent", HealthAddr: healthAddr, Metrics: nodeagent.RegisterMetrics, Log: log}, &ready,
		func(ctx context.Context) error {
			nodeagent.Run(ctx, k, src.Spec, nodeagent.Options{
				Resync:  resync,
				Changes: nodeagent.Merge(ctx, changes, src.Events(), wg.Events()),
				Log:     log,
				Before:  wg.Sync,
				After:   afterPass(wg, transit, log),
				Moves:   ha.Moves(),
				Report: func(spec *v1alpha1.NodeConfigSpec, res nodeagent.Result, err error) {
					ready.Store(err == nil)
					report(spec, res, err)
				},
			})
			return nil
		})
	if err != nil {
		return &exitError{exitError2, err}
	}
	return nil
}

// afterPass runs after each pass: WireGuard settles, and an edge node whose
// way out moved has its flows to other clusters tracked again
// (nodeagent/natflows.go).
func afterPass(wg *nodeagent.WireGuard, transit *nodeagent.TransitRouting, log *slog.Logger) func(*v1alpha1.NodeConfigSpec, error) error {
	flows := &nodeagent.NATFlows{Reset: nodeagent.ResetNATFlows, Log: log}
	return func(spec *v1alpha1.NodeConfigSpec, err error) error {
		return errors.Join(wg.Settle(spec, err), transit.Settle(spec, err), flows.Settle(spec, err))
	}
}
