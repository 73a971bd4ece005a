// Package sandbox runs a whole Kosmos installation on one machine, with
// no Docker: `kosmos up`.
//
// # What runs
//
// For every cluster of the topology: a real control plane (etcd,
// kube-apiserver and kube-controller-manager, from the binaries `make
// testbin` builds), Node objects standing for its machines (NodesFor) and a
// simulated kubelet that runs the pods bound to them. In the host, the
// real kube-scheduler with the Kosmos plugins, the tree controller, and the
// reconciler following the topology file, and `kosmos dns` on loopback;
// the kubeconfig Secrets the topology names hold the clusters' credentials,
// as in a real installation: in every member the reconciler and the tree
// each have their own ServiceAccount, and their Secrets hold short-lived
// tokens of those, rotated while the sandbox runs.
//
// `kubectl logs` and `exec` reach the pods of virtual nodes as in a real
// installation: the API servers have a kubelet client certificate, the
// tree serves its virtual nodes' kubelet endpoint, and the simulated
// kubelets answer (logsexec.go, kubeletserver.go).
//
// # Usage
//
//	sb, err := sandbox.Start(ctx, sandbox.Options{Topology: "topology.example.yaml", Dir: dir, Progress: os.Stdout})
//	// kosmos diff / apply against sb.KubeconfigPath, then:
//	err = sb.StartControllers(ctx)
//	defer sb.Stop()
package sandbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coredns/caddy"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	dnsserver "kosmos.io/kosmos/dnsplugin/server"
	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	hostaccess "kosmos.io/kosmos/kustomize/base/host-access"
	schedconfig "kosmos.io/kosmos/kustomize/base/scheduler"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/scheduler"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
)

// Namespace is where Kosmos runs in the host.
const Namespace = v1alpha1.SystemNamespace

// Options say what to run.
type Options struct {
	// Topology is the topology file.
	Topology string
	// Dir holds the sandbox's state (kubeconfig, logs, config files).
	Dir string
	// NodesPerCluster simulated machines (default 2).
	NodesPerCluster int
	// SchedulerConfig is a KubeSchedulerConfiguration file for the host;
	// empty, the one shipped in kustomize/base/scheduler (its
	// kosmos-scheduler profile is used as it is).
	SchedulerConfig string
	// DNSPort is the loopback port of the host's DNS server (0: any free).
	DNSPort int
	// Dataplane (root) also makes every machine a network namespace with a
	// pod, and runs the node agent in each: packets really cross.
	Dataplane bool
	// AgentCommand is the kosmos binary the agents run (default: this one).
	AgentCommand string
	// NetnsPrefix starts the names of the data plane's network namespaces
	// (default NetnsPrefix); two sandboxes with data planes on one machine
	// need different ones.
	NetnsPrefix string
	// Progress receives one line per step; Log the components' logs.
	Progress io.Writer
	Log      *slog.Logger
}

// Sandbox is a running set of clusters.
type Sandbox struct {
	Topology       *v1alpha1.KosmosTopology
	Env            *testenv.Env
	KubeconfigPath string
	// Nodes are the simulated machines by cluster.
	Nodes map[string][]corev1.Node
	// Reconciler is the running reconciler, once StartControllers ran.
	Reconciler *reconciler.Controller
	// DNSAddr is where the host's DNS server answers (UDP and TCP).
	DNSAddr string
	dns     *caddy.Instance
	world   *networld.World
	// pki signs the API servers' kubelet client certificate
	// (kubeletcerts.go).
	pki *kubeletPKI

	o Options
	// stops end the running controllers (by Component) and wait for them.
	stops  map[Component]func()
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	procs  []*exec.Cmd
}

func (s *Sandbox) say(format string, args ...any) {
	if s.o.Progress != nil {
		fmt.Fprintf(s.o.Progress, format+"\n", args...)
	}
}

// Start brings the clusters up: control planes, machines, kubelets,
// kubeconfig Secrets. On error, what started is stopped.
func Start(ctx context.Context, o Options) (*Sandbox, error) {
	o.NodesPerCluster = cmp.Or(o.NodesPerCluster, 2)
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	t, err := schema.LoadFile(o.Topology)
	if err != nil {
		return nil, err
	}
	bin, err := testenv.BinDir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(bin, "kube-controller-manager")); err != nil {
		return nil, fmt.Errorf("kube-controller-manager missing in %s: run `hack/testbin.sh --sandbox` (make demo does)", bin)
	}
	nodes, err := NodesFor(t, o.NodesPerCluster)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	s := &Sandbox{Topology: t, Nodes: nodes, o: o}
	if s.pki, err = newKubeletPKI(filepath.Join(o.Dir, "pki")); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var names []string
	for _, c := range t.Spec.Clusters {
		names = append(names, c.Name)
	}
	s.say("starting %d control planes (etcd + kube-apiserver): %v", len(names), names)
	start := time.Now()
	if s.Env, err = testenv.Start(ctx, testenv.Options{Names: names, Dir: o.Dir, BinDir: bin, ClusterArgs: serviceRanges(s.Topology),
		APIServerArgs: s.pki.APIServerArgs()}); err != nil {
		return nil, err
	}
	s.say("  control planes up in %s", time.Since(start).Round(100*time.Millisecond))
	if err := s.setUp(ctx, bin); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Sandbox) setUp(ctx context.Context, bin string) error {
	var err error
	if s.KubeconfigPath, err = s.writeKubeconfig(); err != nil {
		return err
	}
	if s.o.Dataplane { // first: the kubelets' exec runs in its namespaces
		if err := s.buildDataplane(); err != nil {
			return err
		}
	}
	for _, c := range s.Topology.Spec.Clusters {
		cfg := s.Env.Cluster(c.Name).Config
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		if err := s.startControllerManager(c.Name, bin); err != nil {
			return err
		}
		k := newKubelet(c.Name, cs, s.Nodes[c.Name], s.o.Log)
		port, err := s.serveKubelet(k)
		if err != nil {
			return err
		}
		for i := range s.Nodes[c.Name] {
			n := withKubeletEndpoint(s.Nodes[c.Name][i], port)
			if err := createNode(ctx, cs, &n); err != nil {
				return fmt.Errorf("cluster %s: %w", c.Name, err)
			}
		}
		s.wg.Go(func() { k.run(s.ctx) })
		if c.Name != s.hostName() { // provisioner.go
			pr := &provisioner{cluster: c.Name, cs: cs, dir: filepath.Join(s.o.Dir, "volumes", c.Name), log: s.o.Log}
			s.wg.Go(func() { pr.run(s.ctx) })
		}
		s.say("  cluster %-12s %s  %d machines, kube-controller-manager, simulated kubelets", c.Name, cfg.Host, len(s.Nodes[c.Name]))
	}
	if err := s.bindKubeletClient(ctx); err != nil {
		return err
	}
	return s.writeSecrets(ctx)
}

// writeKubeconfig writes the kubeconfig with a context per cluster, named
// as the cluster and also as the topology's kubeconfig.context.
func (s *Sandbox) writeKubeconfig() (string, error) {
	kc, err := clientcmd.LoadFromFile(s.Env.KubeconfigPath)
	if err != nil {
		return "", err
	}
	for _, c := range s.Topology.Spec.Clusters {
		if ctxName := c.Kubeconfig.Context; ctxName != "" && ctxName != c.Name {
			kc.Contexts[ctxName] = kc.Contexts[c.Name]
		}
	}
	if err := clientcmd.WriteToFile(*kc, s.Env.KubeconfigPath); err != nil {
		return "", err
	}
	return s.Env.KubeconfigPath, nil
}

// writeSecrets gives every member the host's two identities (the
// reconciler's and the tree's ServiceAccounts, kustomize/base/host-access)
// and stores the kubeconfig Secrets the topology names in the host (the
// reconciler's in kosmos-system, the tree's in kosmos-tree), with
// short-lived tokens of those identities (access.go), rotated until the
// sandbox stops.
func (s *Sandbox) writeSecrets(ctx context.Context) error {
	host := s.hostName()
	cs, err := kubernetes.NewForConfig(s.Env.Cluster(host).Config)
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, c := range s.Topology.Spec.Clusters {
		if c.Role == v1alpha1.RoleMember {
			if err := s.applyHostAccess(ctx, c.Name); err != nil {
				return err
			}
		}
	}
	if err := s.writeKubeconfigSecrets(ctx, cs); err != nil {
		return err
	}
	s.wg.Go(func() { s.rotateTokens(s.ctx, cs) })
	for _, c := range s.Topology.Spec.Clusters {
		if c.SharesTreeIdentity() {
			s.say("  warning: member %s names no kubeconfig.treeSecretRef: its Secret holds the administrator's kubeconfig", c.Name)
		}
	}
	s.say("  kubeconfig Secrets in %s/%s: members reached with %s and %s tokens (%s, rotated)", host, Namespace, hostaccess.ReconcilerAccount, hostaccess.TreeAccount, TokenLifetime)
	return nil
}

func (s *Sandbox) hostName() string {
	for _, c := range s.Topology.Spec.Clusters {
		if c.Role == v1alpha1.RoleHost {
			return c.Name
		}
	}
	return s.Topology.Spec.Clusters[0].Name
}

func createNode(ctx context.Context, cs kubernetes.Interface, n *corev1.Node) error {
	status := n.Status
	created, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	now := metav1.Now()
	created.Status = status
	for i := range created.Status.Conditions {
		created.Status.Conditions[i].LastHeartbeatTime, created.Status.Conditions[i].LastTransitionTime = now, now
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", n.Name, err)
	}
	return nil
}

// startControllerManager runs kube-controller-manager for a cluster, so
// Deployments get ReplicaSets and pods, namespaces their default
// ServiceAccount and root CA, Services their EndpointSlices, and nodes
// lose the not-ready taint admission gives them once they are Ready (and
// go NotReady when their Lease is not renewed).
func (s *Sandbox) startControllerManager(name, bin string) error {
	kc, err := s.Env.KubeconfigFor(name)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.o.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	kcPath, caPath := filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(caPath, s.Env.Cluster(name).Config.CAData, 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig="+kcPath, "--leader-elect=false", "--secure-port=0", "--root-ca-file="+caPath,
		"--controllers=deployment-controller,replicaset-controller,statefulset-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,endpointslice-controller,job-controller,node-lifecycle-controller,persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start kube-controller-manager of %s: %w", name, err)
	}
	s.procs = append(s.procs, cmd)
	s.wg.Go(func() { _ = cmd.Wait(); logf.Close() })
	return nil
}

// Component names a controller of the sandbox that Restart can kill.
type Component string

// The sandbox's controllers, each a leader in a real deployment.
const (
	ComponentReconciler Component = "reconciler"
	ComponentTree       Component = "tree"
	ComponentScheduler  Component = "scheduler"
)

// StartControllers runs, against the host, the kube-scheduler with the
// Kosmos plugins and the tree controller, and the reconciler following
// the topology file. Call it once the first apply installed the CRDs.
func (s *Sandbox) StartControllers() error {
	host := s.hostName()
	for _, c := range []Component{ComponentScheduler, ComponentTree, ComponentReconciler} {
		if err := s.start(c); err != nil {
			return err
		}
	}
	s.say("  kube-scheduler with the Kosmos plugins (profile kosmos-scheduler) on %s", host)
	s.say("  tree controller on %s", host)
	s.say("  reconciler following %s", s.o.Topology)
	if s.world != nil {
		if err := s.startAgents(); err != nil {
			return err
		}
	}
	return s.startDNS(host)
}

// start runs a fresh instance of component c (no memory of a previous
// one) until Restart or Stop ends it.
func (s *Sandbox) start(c Component) error {
	ctx, cancel := context.WithCancel(s.ctx)
	var run func() error
	var err error
	switch c {
	case ComponentReconciler:
		run = s.reconciler(ctx)
	case ComponentTree:
		run, err = s.tree(ctx)
	case ComponentScheduler:
		run, err = s.scheduler(ctx)
	default:
		err = fmt.Errorf("no component %q", c)
	}
	if err != nil {
		cancel()
		return fmt.Errorf("start %s: %w", c, err)
	}
	done := make(chan struct{})
	s.wg.Go(func() {
		defer close(done)
		if err := run(); err != nil && ctx.Err() == nil {
			s.o.Log.Error("component ended", "component", c, "err", err)
		}
	})
	if s.stops == nil {
		s.stops = map[Component]func(){}
	}
	s.stops[c] = func() { cancel(); <-done }
	return nil
}

// reconciler is a fresh reconciler following the topology file.
func (s *Sandbox) reconciler(ctx context.Context) func() error {
	ctl := &reconciler.Controller{
		Source: reconciler.FileSource{Path: s.o.Topology},
		// As in a cluster: through the kubeconfig Secrets, so members are
		// reached with the reconciler's own identity there.
		Connect: func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectSecrets(ctx, s.Env.Cluster(s.hostName()).Config, t, Namespace, kubeconfig.Options{})
		},
		Resync: 30 * time.Second, Prune: true, Log: s.o.Log,
	}
	s.Reconciler = ctl
	return func() error { return ctl.Run(ctx) }
}

// tree is a fresh tree controller against the host.
func (s *Sandbox) tree(ctx context.Context) (func() error, error) {
	cfg := s.Env.Cluster(s.hostName()).Config
	scheme, err := reconciler.Scheme()
	if err != nil {
		return nil, err
	}
	hc, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ctl := &tree.Controller{Host: hc, Config: cfg, Namespace: Namespace, Interval: 2 * time.Second, Grace: 20 * time.Second, Log: s.o.Log}
	serve, err := s.treeKubelet(ctx, ctl)
	if err != nil {
		return nil, err
	}
	return func() error {
		s.wg.Go(serve) // ends with ctx
		return ctl.Run(ctx)
	}, nil
}

// scheduler is a fresh kube-scheduler with the Kosmos plugins.
func (s *Sandbox) scheduler(ctx context.Context) (func() error, error) {
	conf, err := s.schedulerConfig(s.hostName())
	if err != nil {
		return nil, err
	}
	done, err := scheduler.Run(ctx, conf)
	if err != nil {
		return nil, err
	}
	return func() error { return <-done }, nil
}

// Restart ends component c wherever it is (mid-pass, as a killed leader)
// and starts a fresh one that remembers nothing: what a crash and a
// restart of its pod do.
func (s *Sandbox) Restart(c Component) error {
	if stop := s.stops[c]; stop != nil {
		stop()
	}
	return s.start(c)
}

// startDNS runs `kosmos dns` for the host on loopback: the topology's
// domain from the kosmos plugin, cluster.local from CoreDNS's kubernetes
// plugin.
func (s *Sandbox) startDNS(host string) error {
	kc := filepath.Join(s.o.Dir, host, "kubeconfig")
	corefile := fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    kosmos %s {
        kubeconfig %s
        cluster %s
    }
    kubernetes cluster.local {
        kubeconfig %s
    }
}
`, s.o.DNSPort, cmp.Or(s.Topology.Spec.DNS.Domain, "clusterset.local"), kc, host, kc)
	inst, err := dnsserver.Start(corefile)
	if err != nil {
		return fmt.Errorf("DNS server on 127.0.0.1:%d: %w", s.o.DNSPort, err)
	}
	s.dns = inst
	s.DNSAddr, _ = dnsserver.Addrs(inst)
	s.say("  DNS (kosmos dns) on %s", s.DNSAddr)
	return nil
}

// schedulerConfig writes the shipped KubeSchedulerConfiguration with the
// host's kubeconfig and no leader election (one scheduler here).
func (s *Sandbox) schedulerConfig(host string) (string, error) {
	raw := schedconfig.Config
	if s.o.SchedulerConfig != "" {
		var err error
		if raw, err = os.ReadFile(s.o.SchedulerConfig); err != nil {
			return "", fmt.Errorf("scheduler configuration: %w", err)
		}
	}
	var conf map[string]any
	if err := yaml.Unmarshal(raw, &conf); err != nil {
		return "", fmt.Errorf("scheduler configuration %s: %w", s.o.SchedulerConfig, err)
	}
	conf["leaderElection"] = map[string]any{"leaderElect": false}
	conf["clientConnection"] = map[string]any{"kubeconfig": filepath.Join(s.o.Dir, host, "kubeconfig"), "qps": 200, "burst": 400}
	out, err := yaml.Marshal(conf)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.o.Dir, "scheduler-config.yaml")
	return path, os.WriteFile(path, out, 0o600)
}

// Stop ends everything the sandbox started (its state directory stays).
func (s *Sandbox) Stop() error {
	s.cancel()
	for _, p := range s.procs {
		if p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		for _, p := range s.procs {
			if p.Process != nil {
				_ = p.Process.Kill()
			}
		}
	}
	if s.world != nil {
		s.world.Destroy()
	}
	var errs []error
	if s.dns != nil {
		errs = append(errs, dnsserver.Stop(s.dns))
	}
	if s.Env != nil {
		errs = append(errs, s.Env.Stop())
	}
	return errors.Join(errs...)
}

// serviceRanges gives each cluster's API server the service ranges its
// topology declares, so that members' Services are where the topology (and
// its GlobalCIDRs) say they are.
func serviceRanges(t *v1alpha1.KosmosTopology) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, c := range t.Spec.Clusters {
		if len(c.Network.ServiceCIDRs) > 0 {
			out[c.Name] = map[string]string{"service-cluster-ip-range": strings.Join(c.Network.ServiceCIDRs, ",")}
		}
	}
	return out
}
