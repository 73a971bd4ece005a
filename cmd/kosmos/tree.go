package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/component"
	"kosmos.io/kosmos/internal/kubeconfig"
	kscheme "kosmos.io/kosmos/schema/scheme"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/kubelet"
)

// treeHelp is the long help of the command.
const treeHelp = `Tree runs in the host cluster. For every Cluster object the reconciler
writes (tree enabled), it reads the member through its kubeconfig Secret and
keeps its virtual nodes in the host: one per member (Aggregate) or one per
member node (OneToOne), with allocatable net of the member's own workloads,
the kosmos.io/cluster, region and zone labels, the kosmos.io/leaf taint and
the free-resource summary the scheduler checks. Each virtual node renews a
Lease in kube-node-lease while its member answers, and turns NotReady once
the member has been silent for --grace. Virtual nodes of clusters that left
the topology are removed; no other node is ever touched.

Pods bound to a virtual node run in the member: the tree creates them there
(same namespace and name) with the ConfigMaps, Secrets, ServiceAccount and
claims they reference, keeps those copies updated and collects them when no
pod needs them, and writes the member pod's status back on the host pod
(pod IPs translated to the member's GlobalCIDRs). Deleting either side is
carried to the other with the grace period honoured. In-cluster clients in a
synced pod talk to the host's API server as the pod's host ServiceAccount
(the Cluster's hostAPIEndpoint, the host's CA and a host token).

With --kubelet-client-ca, the virtual nodes advertise a kubelet endpoint
(--node-ip, port of --kubelet-addr) where the host's API server sends
kubectl logs, exec, attach and port-forward; each is relayed to the member's
API server for the member pod. Callers must present a client certificate
signed by that CA (the API server's --kubelet-client-certificate) and be
allowed nodes/proxy on the node in the host, as with a real kubelet.

Pods run in members resolve names at the host's cluster DNS (--host-dns,
by default the ClusterIP of the host's kube-system/kube-dns) with the search
path the host would give them, and get the host's Services of their namespace
as service-link variables (--host-dns off keeps the member's DNS but not its
variables); a pod annotated kosmos.io/member-dns: member keeps the member's
DNS. When the host's service range is mapped by its globalCIDRs, copies reach
it at the global addresses; when it overlaps the member's, unmapped, they keep
the member's DNS and variables (event HostServicesUnreachable).`

// treeFlags are the tree command's flags.
type treeFlags struct {
	kubeconfig, kctx, namespace, healthAddr                 string
	kubeletAddr, kubeletCA, kubeletCert, kubeletKey, nodeIP string
	hostDNS, clusterDomain                                  string
	interval, grace                                         time.Duration
	workers                                                 int
	qps                                                     float32
	leaderElect, allowInsecureKubeconfig                    bool
}

func newTreeCommand() *cobra.Command {
	var f treeFlags
	cmd := &cobra.Command{
		Use:   "tree",
		Short: "Keep member clusters as virtual nodes of the host (ClusterTree)",
		Long:  treeHelp,
		Example: `  kosmos tree --leader-elect
  kosmos tree --kubeconfig ~/.kube/host --interval 5s --workers 32
  kosmos tree --kubelet-client-ca /etc/kubernetes/pki/ca.crt --node-ip $POD_IP`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTree(cmd.Context(), cmd.ErrOrStderr(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "the host's kubeconfig (default: in-cluster)")
	fl.StringVar(&f.kctx, "context", "", "context of --kubeconfig (default: its current context)")
	fl.StringVar(&f.namespace, "namespace", cmpOr(os.Getenv("POD_NAMESPACE"), v1alpha1.SystemNamespace), "namespace of kubeconfig Secrets without one, and of the leader Lease")
	fl.DurationVar(&f.interval, "interval", 10*time.Second, "period between passes over the members")
	fl.DurationVar(&f.grace, "grace", 40*time.Second, "how long a member may not answer before its virtual nodes go NotReady")
	fl.IntVar(&f.workers, "workers", 16, "pods synced in parallel per member")
	fl.Float32Var(&f.qps, "qps", 100, "requests per second to each cluster (burst: twice that)")
	fl.StringVar(&f.kubeletAddr, "kubelet-addr", ":10250", "address of the virtual nodes' kubelet endpoint (with --kubelet-client-ca)")
	fl.StringVar(&f.kubeletCA, "kubelet-client-ca", "", "CA file of the client certificates the kubelet endpoint accepts (empty: no endpoint)")
	fl.StringVar(&f.kubeletCert, "kubelet-cert", "", "serving certificate of the kubelet endpoint (default: self-signed)")
	fl.StringVar(&f.kubeletKey, "kubelet-key", "", "key of --kubelet-cert")
	fl.StringVar(&f.nodeIP, "node-ip", os.Getenv("POD_IP"), "address the virtual nodes advertise for their kubelet endpoint")
	fl.StringVar(&f.hostDNS, "host-dns", "", "where pods run in members resolve names: an IP of the host's cluster DNS reachable from the members (default: the ClusterIP of the host's kube-system/kube-dns), or off to leave them on the member's DNS (they still get the host's service variables)")
	fl.StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "the host's cluster domain, for the search path of pods run in members")
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "act only while holding the Lease kosmos-tree")
	fl.BoolVar(&f.allowInsecureKubeconfig, "allow-insecure-kubeconfig", false, "accept kubeconfig Secrets marked insecure-skip-tls-verify (test setups only; file paths, proxies and exec plugins stay refused)")
	fl.StringVar(&f.healthAddr, "health-addr", ":9442", "address of /healthz, /readyz and /metrics (empty: off)")
	return cmd
}

// runTree runs the tree controller (and its kubelet endpoint) against the
// host until SIGINT or SIGTERM.
func runTree(ctx context.Context, stderr io.Writer, f treeFlags) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := hostConfig(f.kubeconfig, f.kctx)
	if err != nil {
		return &exitError{exitError2, err}
	}
	scheme, err := kscheme.New()
	if err != nil {
		return &exitError{exitError2, err}
	}
	host, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return &exitError{exitError2, err}
	}
	ctl := &tree.Controller{Host: host, Config: cfg, Namespace: f.namespace, Interval: f.interval, Grace: f.grace,
		Workers: f.workers, QPS: f.qps, Log: log, HostDNS: f.hostDNS, ClusterDomain: f.clusterDomain,
		Kubeconfig: kubeconfig.Options{AllowInsecureSkipTLSVerify: f.allowInsecureKubeconfig}}
	if f.kubeletCA != "" {
		stopKubelet, err := serveKubelet(ctx, ctl, f.kubeletAddr, f.kubeletCA, f.kubeletCert, f.kubeletKey, f.nodeIP)
		if err != nil {
			return &exitError{exitError2, err}
		}
		defer stopKubelet()
	}
	var ready atomic.Bool
	ctl.OnPass = func(err error) { ready.Store(err == nil) }
	opts := component.Options{Name: "kosmos-tree", HealthAddr: f.healthAddr, Metrics: ctl.Register,
		LeaderElect: f.leaderElect, Config: cfg, Namespace: f.namespace, Log: log}
	if err := component.Run(ctx, opts, &ready, ctl.Run); err != nil {
		return &exitError{exitError2, err}
	}
	return nil
}

// serveKubelet starts the virtual nodes' kubelet endpoint and sets the
// address the nodes advertise.
func serveKubelet(ctx context.Context, ctl *tree.Controller, addr, caFile, certFile, keyFile, nodeIP string) (func(), error) {
	if nodeIP == "" {
		return nil, errors.New("--kubelet-client-ca needs --node-ip (or POD_IP): the address the host's API server reaches this endpoint on")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--kubelet-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--kubelet-client-ca %s holds no PEM certificate", caFile)
	}
	srv := &kubelet.Server{Tree: ctl, ClientCA: pool, Log: ctl.Log}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--kubelet-cert/--kubelet-key: %w", err)
		}
		srv.Certificate = &c
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kubelet endpoint %s: %w", addr, err)
	}
	ctl.NodeIP, ctl.KubeletPort = nodeIP, int32(ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		if err := srv.Serve(ctx, ln); err != nil {
			ctl.Log.Error("kubelet endpoint", "err", err)
		}
	}()
	return cancel, nil
}
