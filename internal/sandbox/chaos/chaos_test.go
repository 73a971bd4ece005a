// Package chaos_test is the chaos suite of the sandbox, in a process of its
// own (one in-process kube-scheduler per process).
package chaos_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/sandbox"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree/translate"
)

// chaosLong runs the full suite (make chaos): API servers frozen for 90 s,
// longer than the node grace period, and a 30 s stream of EndpointSlice
// changes. make test runs the short version.
var chaosLong = flag.Bool("chaos.long", false, "the full chaos suite: 90 s freezes, a 30 s stream of EndpointSlice changes")

// chaosPrefix names the suite's network namespaces, apart from those of
// `kosmos up` (which other tests run at the same time).
const chaosPrefix = "kch-"

// pinger pings one pair every 100 ms until stopped.
type pinger struct {
	pair sandbox.PingPair
	cmd  *exec.Cmd
	out  bytes.Buffer
}

func startPings(t *testing.T, pairs []sandbox.PingPair) []*pinger {
	t.Helper()
	var out []*pinger
	for _, p := range pairs {
		pg := &pinger{pair: p}
		pg.cmd = exec.Command("ip", "netns", "exec", p.FromNS, "ping", "-i", "0.1", "-W", "1", p.To.String())
		pg.cmd.Stdout, pg.cmd.Stderr = &pg.out, &pg.out
		if err := pg.cmd.Start(); err != nil {
			t.Fatalf("ping %s: %v", p.Name, err)
		}
		out = append(out, pg)
	}
	return out
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// stop ends the pings and counts what was sent and what came back.
func stop(t *testing.T, pgs []*pinger) (sent, lost int, worst string) {
	t.Helper()
	worstLost := 0
	for _, pg := range pgs {
		_ = pg.cmd.Process.Signal(syscall.SIGINT)
		_ = pg.cmd.Wait()
		m := pingSummary.FindStringSubmatch(pg.out.String())
		if m == nil {
			t.Errorf("ping %s printed no summary:\n%s", pg.pair.Name, pg.out.String())
			continue
		}
		s, _ := strconv.Atoi(m[1])
		r, _ := strconv.Atoi(m[2])
		sent, lost = sent+s, lost+s-r
		if s-r > worstLost {
			worstLost, worst = s-r, fmt.Sprintf("%s: %d of %d lost", pg.pair.Name, s-r, s)
		}
	}
	return sent, lost, worst
}

// chaos is the sandbox under test and what its steps need.
type chaos struct {
	sb     *sandbox.Sandbox
	topo   string // the topology file the reconciler follows
	good   []byte // its good content
	freeze time.Duration
}

// hold waits d, or fails the test when ctx ends first.
func hold(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-time.After(d):
	case <-t.Context().Done():
		t.Fatal("test ended")
	}
}

// writeTopology replaces the file the reconciler follows, atomically.
func (c *chaos) writeTopology(t *testing.T, data []byte) {
	t.Helper()
	tmp := c.topo + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, c.topo); err != nil {
		t.Fatal(err)
	}
}

// converged waits until every check passes (pods ping across every pair of
// clusters) and `kosmos diff` has nothing to do.
func (c *chaos) converged(t *testing.T, ctx context.Context) time.Duration {
	t.Helper()
	nodes, err := sandbox.DataplaneNodes(c.sb.Topology, 2)
	if err != nil {
		t.Fatal(err)
	}
	return c.convergedOn(t, ctx, nodes)
}

// convergedOn is converged with the probe table run from the first machine
// of each cluster in nodes.
func (c *chaos) convergedOn(t *testing.T, ctx context.Context, nodes map[string][]networld.NodeSpec) time.Duration {
	t.Helper()
	return poll.NoError(t, 3*time.Minute, "the fleet to converge back", func() error {
		r, err := check.Collect(ctx, c.sb.Topology, c.sb.KubeconfigPath)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if !check.WriteChecks(&out, append(r.Checks(c.sb.Topology, true), sandbox.PingChecks(chaosPrefix, c.sb.Topology, nodes)...)) {
			return fmt.Errorf("checks fail:\n%s", out.String())
		}
		clusters, err := reconciler.ConnectContexts(c.sb.Topology, c.sb.KubeconfigPath)
		if err != nil {
			return err
		}
		d, err := reconciler.LiveDiff(ctx, c.sb.Topology, clusters, reconciler.PassOptions{Prune: true})
		if err != nil {
			return err
		}
		if ch := d.Changes(); len(ch) > 0 {
			return fmt.Errorf("kosmos diff: %d changes, first:\n%s", len(ch), reconciler.Unified(ch[0], false))
		}
		return nil
	})
}

// memberFrozen: member-b's API server freezes; meanwhile the reconciler is
// killed and restarted (it remembers nothing) and `kosmos apply --partial`
// runs from a fresh process; member-b's nodes turn NotReady after the thaw,
// as the node lifecycle controller marks them after its grace period.
func (c *chaos) memberFrozen(t *testing.T, ctx context.Context) {
	env := c.sb.Env.Cluster("member-b")
	if err := env.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Resume() }()
	hold(t, c.freeze/3)
	if err := c.sb.Restart(sandbox.ComponentReconciler); err != nil {
		t.Fatal(err)
	}
	clusters, err := reconciler.ConnectContexts(c.sb.Topology, c.sb.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	connect := func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
		return reconciler.ConnectContexts(t, c.sb.KubeconfigPath)
	}
	rep := reconciler.Pass(ctx, c.sb.Topology, clusters, reconciler.PassOptions{Prune: true, Connect: connect, ClusterTimeout: 5 * time.Second})
	for _, cr := range rep.Clusters {
		if (cr.Name == "member-b") != (cr.Err != nil) {
			t.Errorf("kosmos apply --partial with member-b frozen, cluster %s: %v", cr.Name, cr.Err)
		}
	}
	hold(t, c.freeze-c.freeze/3)
	if err := env.Resume(); err != nil {
		t.Fatal(err)
	}
	if !*chaosLong { // the short freeze is shorter than the node grace period: mark them as the controller would
		markNotReady(t, ctx, kubernetes.NewForConfigOrDie(env.Config), "member-b-n1", "member-b-n2")
	}
}

func markNotReady(t *testing.T, ctx context.Context, cs kubernetes.Interface, names ...string) {
	t.Helper()
	for _, name := range names {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for i := range n.Status.Conditions {
				if n.Status.Conditions[i].Type == corev1.NodeReady {
					n.Status.Conditions[i].Status, n.Status.Conditions[i].Reason = corev1.ConditionUnknown, "NodeStatusUnknown"
				}
			}
			_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// hostFrozen: the host's API server (the inventory, the tree, the
// scheduler) freezes.
func (c *chaos) hostFrozen(t *testing.T, _ context.Context) {
	env := c.sb.Env.Cluster("host")
	if err := env.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Resume() }()
	hold(t, c.freeze)
}

// badTopologies: an invalid topology, then a truncated valid one (the host
// alone: held by the deletion guard), then the good one again.
func (c *chaos) badTopologies(t *testing.T, _ context.Context) {
	c.writeTopology(t, append(bytes.Clone(c.good), []byte("\n  bogus: [\n")...))
	hold(t, 3*time.Second)
	topo, err := schema.Load(c.topo, c.good)
	if err != nil {
		t.Fatal(err)
	}
	topo.Spec.Clusters = topo.Spec.Clusters[:1]
	topo.Spec.DistributionPolicies, topo.Spec.Services = nil, nil
	truncated, err := yaml.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.Load(c.topo, truncated); err != nil {
		t.Fatalf("the truncated topology is not valid: %v", err)
	}
	c.writeTopology(t, truncated)
	hold(t, 5*time.Second)
	c.writeTopology(t, c.good)
}

// leaderKilled: with a Deployment running through the tree, the
// reconciler, the tree and the scheduler are killed mid-pass twice in a
// row and started again, remembering nothing. The virtual nodes and the
// running pods stay the same objects (nothing deleted and recreated), no
// pod runs twice, and the fresh scheduler and tree place and run new
// replicas.
func (c *chaos) leaderKilled(t *testing.T, ctx context.Context) {
	host := kubernetes.NewForConfigOrDie(c.sb.Env.Cluster("host").Config)
	web := workload{host: host, ns: "chaos", name: "web"}
	web.scale(t, ctx, 3)
	before := web.uids(t, ctx)
	for range 2 {
		for _, comp := range []sandbox.Component{sandbox.ComponentReconciler, sandbox.ComponentTree, sandbox.ComponentScheduler} {
			if err := c.sb.Restart(comp); err != nil {
				t.Fatal(err)
			}
		}
		hold(t, 300*time.Millisecond)
	}
	web.scale(t, ctx, 5)
	after := web.uids(t, ctx)
	for k, uid := range before {
		if after[k] != uid {
			t.Errorf("%s was deleted and recreated across the restarts (UID %s, now %q)", k, uid, after[k])
		}
	}
	c.onceEach(t, ctx, web)
}

// onceEach fails the test when a host pod has more than one copy in the
// members, or a copy outlives its host pod, once the fleet settles.
func (c *chaos) onceEach(t *testing.T, ctx context.Context, w workload) {
	t.Helper()
	poll.NoError(t, time.Minute, "one copy per host pod", func() error {
		pods, err := w.host.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		live := map[string]bool{}
		for _, p := range pods.Items {
			live[string(p.UID)] = true
		}
		copies := map[string]int{}
		for _, m := range []string{"member-a", "member-b", "member-c"} {
			mp, err := kubernetes.NewForConfigOrDie(c.sb.Env.Cluster(m).Config).CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, p := range mp.Items {
				uid := p.Annotations[translate.AnnotationHostPodUID]
				if copies[uid]++; !live[uid] || copies[uid] > 1 {
					return fmt.Errorf("member %s: pod %s copies host pod %s (live %v, copies %d)", m, p.Name, uid, live[uid], copies[uid])
				}
			}
		}
		return nil
	})
}

// workload is a Deployment in the host placed by the Kosmos scheduler on
// virtual nodes.
type workload struct {
	host     kubernetes.Interface
	ns, name string
}

// scale creates or scales the Deployment to n replicas and waits until n
// of its pods run on virtual nodes.
func (w workload) scale(t *testing.T, ctx context.Context, n int32) {
	t.Helper()
	labels := map[string]string{"app": w.name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: w.ns},
		Spec: appsv1.DeploymentSpec{Replicas: &n, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				SchedulerName: "kosmos-scheduler", Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}},
				// No DistributionPolicy covers the namespace: the pods go to
				// virtual nodes because they select and tolerate them.
				NodeSelector: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByTree},
				Tolerations:  []corev1.Toleration{{Key: v1alpha1.TaintLeaf, Operator: corev1.TolerationOpExists}}}}}}
	if _, err := w.host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		have, err := w.host.AppsV1().Deployments(w.ns).Get(ctx, w.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = w.host.AppsV1().Deployments(w.ns).Create(ctx, d, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		have.Spec.Replicas = &n
		_, err = w.host.AppsV1().Deployments(w.ns).Update(ctx, have, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	poll.NoError(t, 2*time.Minute, fmt.Sprintf("%d pods of %s running through the tree", n, w.name), func() error {
		running, seen := 0, []string{}
		for _, p := range w.pods(t, ctx) {
			if p.Status.Phase == corev1.PodRunning && strings.HasPrefix(p.Spec.NodeName, "kosmos-") && p.DeletionTimestamp == nil {
				running++
			}
			seen = append(seen, fmt.Sprintf("%s on %q %s %v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions))
		}
		if running != int(n) {
			return fmt.Errorf("%d of %d running: %v", running, n, seen)
		}
		return nil
	})
}

func (w workload) pods(t *testing.T, ctx context.Context) []corev1.Pod {
	t.Helper()
	pods, err := w.host.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// uids are the UIDs of the workload's pods and of the virtual nodes, by
// kind/name.
func (w workload) uids(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range w.pods(t, ctx) {
		out["pod/"+p.Name] = string(p.UID)
	}
	nodes, err := w.host.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByTree})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		out["node/"+n.Name] = string(n.UID)
	}
	return out
}

// sliceStream changes an exported service's EndpointSlice 50 times a
// second; passes must still run: the import in member-b follows within a
// few seconds all along.
func (c *chaos) sliceStream(t *testing.T, ctx context.Context) {
	ma := kubernetes.NewForConfigOrDie(c.sb.Env.Cluster("member-a").Config)
	mb := kubernetes.NewForConfigOrDie(c.sb.Env.Cluster("member-b").Config)
	for _, cs := range []kubernetes.Interface{ma, mb} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ma.CoreV1().Services("shop").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port, proto := int32(8080), corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: ptr("http"), Port: &port, Protocol: &proto}}}
	duration := 10 * time.Second
	if *chaosLong {
		duration = 30 * time.Second
	}
	imported := func() string { // what member-b imported from member-a
		l, err := mb.DiscoveryV1().EndpointSlices("shop").List(ctx, metav1.ListOptions{LabelSelector: "multicluster.kubernetes.io/source-cluster=member-a"})
		if err != nil || len(l.Items) == 0 || len(l.Items[0].Endpoints) == 0 {
			return ""
		}
		return l.Items[0].Endpoints[0].Addresses[0]
	}
	var gaps []time.Duration
	last, lastSeen := time.Now(), ""
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i, start := 0, time.Now(); time.Since(start) < duration; i++ {
		<-tick.C
		slice.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{fmt.Sprintf("10.244.1.%d", 10+i%200)}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}}
		var err error
		if i == 0 {
			slice, err = ma.DiscoveryV1().EndpointSlices("shop").Create(ctx, slice, metav1.CreateOptions{})
		} else {
			slice, err = ma.DiscoveryV1().EndpointSlices("shop").Update(ctx, slice, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if seen := imported(); seen != lastSeen && seen != "" {
				gaps, last, lastSeen = append(gaps, time.Since(last)), time.Now(), seen
			}
		}
	}
	worst := time.Duration(0)
	for _, g := range gaps[min(1, len(gaps)):] { // the first counts from the start
		worst = max(worst, g)
	}
	t.Logf("slice stream: the import followed %d times in %s; the longest wait between two imports %s", len(gaps), duration, worst.Round(time.Millisecond))
	if len(gaps) < 2 || worst > 5*time.Second {
		t.Errorf("passes starved under a stream of EndpointSlice changes: %d imports, longest wait %s", len(gaps), worst)
	}
}

// TestChaos runs the sandbox with its data plane through control-plane
// failures while pods of every pair of clusters ping each other every
// 100 ms: no reply may be lost, and the fleet converges back after each
// step (`kosmos check` passes, `kosmos diff` has nothing to do). The last
// step is a data-plane failure, member-b's active gateway losing its
// underlay link: there a pair through it may lose 1 s of pings
// (gatewayLinkDown).
func TestChaos(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the chaos suite needs root (network namespaces, VXLAN, iptables); make test runs as root")
	}
	ctx := t.Context()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kosmos")
	if out, err := exec.Command("go", "build", "-o", bin, "kosmos.io/kosmos/cmd/kosmos").CombinedOutput(); err != nil {
		t.Fatalf("build kosmos: %v\n%s", err, out)
	}
	good, err := os.ReadFile(filepath.Join("..", "..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := &chaos{topo: filepath.Join(dir, "topology.yaml"), good: good, freeze: 20 * time.Second}
	if *chaosLong {
		c.freeze = 90 * time.Second
	}
	c.writeTopology(t, good)
	logPath := filepath.Join(dir, "components.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() { // what the controllers said, when something failed
		if data, err := os.ReadFile(logPath); err == nil && t.Failed() {
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			t.Logf("the controllers' last words:\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
		}
	})
	sb, err := sandbox.Start(ctx, sandbox.Options{Topology: c.topo, Dir: filepath.Join(dir, "state"), Dataplane: true, AgentCommand: bin, NetnsPrefix: chaosPrefix,
		Log: slog.New(slog.NewTextHandler(logf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sb.Stop() }()
	c.sb = sb
	if err := sb.FirstApply(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartControllers(); err != nil {
		t.Fatal(err)
	}
	c.converged(t, ctx)
	nodes, err := sandbox.DataplaneNodes(sb.Topology, 2)
	if err != nil {
		t.Fatal(err)
	}
	pairs := sandbox.PingPairs(chaosPrefix, sb.Topology, nodes)
	linkDown := &gatewayLinkDown{c: c}
	steps := []struct {
		name string
		run  func(*testing.T, context.Context)
		// pairs, when set, are the step's own ping pairs; judge, when
		// set, its own loss rule (else no reply may be lost).
		pairs func(*testing.T, context.Context) []sandbox.PingPair
		judge func(*testing.T, []*pinger)
	}{
		{fmt.Sprintf("member-b's API server frozen %s; reconciler restarted, apply --partial", c.freeze), c.memberFrozen, nil, nil},
		{"reconciler, tree and scheduler killed mid-pass, twice", c.leaderKilled, nil, nil},
		{"kubectl logs and exec -- ping through a virtual node", c.logsAndExec, nil, nil},
		{fmt.Sprintf("host's API server frozen %s", c.freeze), c.hostFrozen, nil, nil},
		{"invalid, then truncated (guarded), then good topology", c.badTopologies, nil, nil},
		{"EndpointSlice changes at 50/s", c.sliceStream, nil, nil},
		{gwCluster + "'s active gateway: underlay link down, then up", linkDown.run, linkDown.pairs, linkDown.judge},
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tPINGS\tLOST\tCONVERGED IN\tWORST PAIR")
	for _, st := range steps {
		t.Logf("step: %s", st.name)
		stepPairs := pairs
		if st.pairs != nil {
			stepPairs = st.pairs(t, ctx)
		}
		pgs := startPings(t, stepPairs)
		start := time.Now()
		st.run(t, ctx)
		conv := c.converged(t, ctx)
		sent, lost, worst := stop(t, pgs)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", st.name, sent, lost, conv.Round(100*time.Millisecond), worst)
		if st.judge != nil {
			st.judge(t, pgs)
		} else if lost > 0 {
			t.Errorf("%s: %d of %d pings lost (%s), over %s", st.name, lost, sent, worst, time.Since(start).Round(time.Second))
		}
	}
	tw.Flush()
	t.Log("\n" + table.String())
	fmt.Println(strings.TrimSpace(table.String()))
	c.probeBroken(t, ctx)
}

func ptr[T any](v T) *T { return &v }
