package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/mcs"
	"kosmos.io/kosmos/tree"
)

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// TestSandboxEndToEnd is the main job, as `kosmos up` runs it, on the
// example topology: four real clusters; the first diff shows what Kosmos
// will create; one apply; the controllers; a Deployment the web-weighted
// policy (2:1:1) matches ends up Running in the members, 2/1/1; then the
// diff is empty and every check passes.
func TestSandboxEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	sb, err := Start(ctx, Options{
		Topology: filepath.Join("..", "..", "topology.example.yaml"), Dir: t.TempDir(),
		SchedulerConfig: filepath.Join("..", "..", "kustomize", "base", "scheduler", "scheduler-config.yaml"),
		Progress:        testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Stop(); err != nil {
			t.Error(err)
		}
	}()
	clusters, err := reconciler.ConnectContexts(sb.Topology, sb.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := reconciler.LiveDiff(ctx, sb.Topology, clusters, reconciler.PassOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(diffs.Changes()); n == 0 {
		t.Fatal("the first diff shows nothing to create")
	}
	rep := reconciler.Pass(ctx, sb.Topology, clusters, reconciler.PassOptions{Prune: true})
	if err := errors.Join(rep.Err(), rep.ProblemsErr()); err != nil {
		t.Fatalf("first apply: %v", err)
	}
	if err := sb.StartControllers(); err != nil {
		t.Fatal(err)
	}

	host := kubernetes.NewForConfigOrDie(sb.Env.Cluster("host").Config)
	// shop opts in to host tokens for its pods in members (the sandbox's
	// tree runs with the host's administrator rights, so no RoleBinding).
	_, err = host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{tree.LabelTreeTokens: tree.TreeTokensEnabled}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replicas := int32(4)
	labels := map[string]string{"app": "web"}
	_, err = host.AppsV1().Deployments("shop").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				SchedulerName: "kosmos-scheduler",
				Containers:    []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	members := map[string]kubernetes.Interface{}
	for _, m := range []string{"member-a", "member-b", "member-c"} {
		members[m] = kubernetes.NewForConfigOrDie(sb.Env.Cluster(m).Config)
	}
	want := map[string]int{"member-a": 2, "member-b": 1, "member-c": 1}
	var last string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := runningByCluster(ctx, host, members)
		if err == nil && fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		last = fmt.Sprintf("%v (%v)", got, err)
		if time.Now().After(deadline) {
			t.Fatalf("the Deployment's pods never ran 2/1/1 in the members: last %s\n%s", last, dump(ctx, host))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}

	checkMemberIdentities(ctx, t, host)
	statefulSetWithClaims(ctx, t, host, members) // storage_test.go
	checkLogsAndExec(ctx, t, sb, host, members)

	// The topology exports shop/web: a Service for the pods in member-a
	// is answered by the sandbox's DNS server under clusterset.local with
	// the VIP: the ClusterIP of the Service the reconciler derived from the
	// import in the host (the DNS server is the host's).
	ma := members["member-a"]
	_, err = ma.CoreV1().Services("shop").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var answer []dns.RR
	vip := ""
	deadline = time.Now().Add(2 * time.Minute)
	for {
		if d, err := host.CoreV1().Services("shop").Get(ctx, mcs.DerivedName("web"), metav1.GetOptions{}); err == nil {
			vip = d.Spec.ClusterIP
		}
		q := new(dns.Msg)
		q.SetQuestion("web.shop.svc.clusterset.local.", dns.TypeA)
		r, _, err := new(dns.Client).ExchangeContext(ctx, q, sb.DNSAddr)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 && vip != "" && r.Answer[0].(*dns.A).A.String() == vip {
			answer = r.Answer
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web.shop.svc.clusterset.local never answered the host's VIP %q by %s: %v %v", vip, sb.DNSAddr, r, err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Second):
		}
	}
	t.Logf("web.shop.svc.clusterset.local: %v", answer)
	// The derived Service's slices hold member-a's endpoints at its global
	// pod addresses (GlobalCIDR 100.64.0.0/16 maps member-a's pod CIDR).
	eps, err := host.DiscoveryV1().EndpointSlices("shop").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + mcs.DerivedName("web")})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps.Items) == 0 {
		t.Errorf("the host's derived Service of web has no EndpointSlices")
	}
	for _, sl := range eps.Items {
		for _, ep := range sl.Endpoints {
			for _, a := range ep.Addresses {
				if !netip.MustParsePrefix("100.64.0.0/16").Contains(netip.MustParseAddr(a)) {
					t.Errorf("the host's derived Service of web has endpoint %s, not at member-a's global pod address (100.64.0.0/16)", a)
				}
			}
		}
	}

	diffs, err = reconciler.LiveDiff(ctx, sb.Topology, clusters, reconciler.PassOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if ch := diffs.Changes(); len(ch) > 0 {
		t.Errorf("kosmos diff after up reports %d changes, first %s", len(ch), ch[0].Key)
	}
	r, err := check.Collect(ctx, sb.Topology, sb.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r.WriteTable(&out)
	// kosmos check's DNS row, asking the sandbox's DNS server as the host's.
	dnsRow := check.DNSCheck(ctx, "host", sb.Topology.Spec.DNS.Domain, sb.DNSAddr, check.DNSQuery(sb.DNSAddr, 3*time.Second), r.Clusters[0].Imports)
	if dnsRow.Result != "PASS" || !strings.Contains(dnsRow.Detail, vip+" (the VIP)") {
		t.Errorf("kosmos check's DNS row: %+v, want PASS with the VIP %s", dnsRow, vip)
	}
	if !check.WriteChecks(&out, append(r.Checks(sb.Topology, false), dnsRow)) {
		t.Errorf("kosmos check fails:\n%s", out.String())
	}
	t.Log("\n" + out.String())

	// A machine marked NotReady (as the node lifecycle controller does after
	// an outage of the control plane) comes back Ready: the simulated
	// kubelet posts its status again, as a real one does.
	mb := kubernetes.NewForConfigOrDie(sb.Env.Cluster("member-b").Config)
	n, err := mb.CoreV1().Nodes().Get(ctx, "member-b-n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status, n.Status.Conditions[i].Reason = corev1.ConditionUnknown, "NodeStatusUnknown"
		}
	}
	if _, err := mb.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "member-b-n1 Ready again", func() bool {
		n, err := mb.CoreV1().Nodes().Get(ctx, "member-b-n1", metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	})
}

// checkMemberIdentities: each member's two kubeconfig Secrets in the host
// (the reconciler's in kosmos-system, the tree's in kosmos-tree) authenticate, in the member, as the reconciler's and the tree's own
// ServiceAccounts, with tokens that expire within TokenLifetime.
func checkMemberIdentities(ctx context.Context, t *testing.T, host kubernetes.Interface) {
	t.Helper()
	for _, m := range []string{"member-a", "member-b", "member-c"} {
		for ns, sa := range map[string]string{Namespace: "kosmos-host-reconciler", "kosmos-tree": "kosmos-host-tree"} {
			secret := ns + "/kubeconfig-" + m
			s, err := host.CoreV1().Secrets(ns).Get(ctx, "kubeconfig-"+m, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data["kubeconfig"])
			if err != nil {
				t.Fatalf("Secret %s: %v", secret, err)
			}
			who, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("Secret %s in %s: %v", secret, m, err)
			}
			if want := "system:serviceaccount:kosmos-system:" + sa; who.Status.UserInfo.Username != want {
				t.Errorf("Secret %s authenticates in %s as %q, want %q", secret, m, who.Status.UserInfo.Username, want)
			}
			exp, err := time.Parse(time.RFC3339, s.Annotations[AnnotationTokenExpires])
			if err != nil || time.Until(exp) > TokenLifetime {
				t.Errorf("Secret %s: token expiry %q, want within %s", secret, s.Annotations[AnnotationTokenExpires], TokenLifetime)
			}
		}
	}
}

// runningByCluster counts the host's web pods Running on each member's
// virtual nodes whose member copy runs too.
func runningByCluster(ctx context.Context, host kubernetes.Interface, members map[string]kubernetes.Interface) (map[string]int, error) {
	pods, err := host.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" {
			continue
		}
		n, err := host.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		cl := n.Labels[tree.LabelCluster]
		m, ok := members[cl]
		if !ok {
			continue
		}
		mp, err := m.CoreV1().Pods("shop").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil || mp.Status.Phase != corev1.PodRunning {
			continue
		}
		out[cl]++
	}
	return out, nil
}

// dump describes the host's shop namespace for a failure message.
func dump(ctx context.Context, host kubernetes.Interface) string {
	var b bytes.Buffer
	if rs, err := host.AppsV1().ReplicaSets("shop").List(ctx, metav1.ListOptions{}); err == nil {
		for _, r := range rs.Items {
			fmt.Fprintf(&b, "replicaset %s: %d/%d\n", r.Name, r.Status.ReadyReplicas, r.Status.Replicas)
		}
	}
	if pods, err := host.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s node=%q phase=%s scheduler=%s\n", p.Name, p.Spec.NodeName, p.Status.Phase, p.Spec.SchedulerName)
		}
	}
	if evs, err := host.CoreV1().Events("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range evs.Items {
			fmt.Fprintf(&b, "event %s/%s %s: %s\n", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	return b.String()
}
