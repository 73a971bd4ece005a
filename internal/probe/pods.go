package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Labels of the probe pods, besides the Kosmos ownership labels.
const (
	LabelRun  = "kosmos.io/probe-run"  // one run of kosmos check --probe
	LabelNet  = "kosmos.io/probe-net"  // pod or host
	LabelRole = "kosmos.io/probe-role" // server or client
	// DefaultNamespace is the dedicated namespace of the probe pods
	// (kustomize/base/probe); the reconciler's deletion guard leaves out
	// the prune of the probe services' imports there.
	DefaultNamespace = reconciler.ProbeNamespace
)

// PodRunner runs the probes as short-lived pods through the API: in each
// cluster, an echo server pod on the pod network and one on the host
// network; then, per source, a client pod that probes its targets and
// leaves the answers in its termination message. No pod outlives the run:
// Close deletes every pod of the run, and each pod carries an
// activeDeadlineSeconds in case Close never runs.
type PodRunner struct {
	// Topology names the topology (the kosmos.io/topology label).
	Topology string
	// Clusters are the clients by cluster name.
	Clusters map[string]client.Client
	// Namespace of the pods (default DefaultNamespace); it must exist.
	Namespace string
	// Image is the Kosmos image (its entrypoint is the kosmos binary).
	Image string
	// Port of the echo servers (default DefaultPort).
	Port int
	// Deadline bounds the pods' lives (activeDeadlineSeconds; default 5 min).
	Deadline time.Duration
	// Poll is how often pod states are read (default 1 s).
	Poll time.Duration

	once     sync.Once
	run      string
	services *Exporter
}

func (r *PodRunner) init() {
	r.once.Do(func() {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		r.run = hex.EncodeToString(b)
		if r.Namespace == "" {
			r.Namespace = DefaultNamespace
		}
		if r.Port == 0 {
			r.Port = DefaultPort
		}
		if r.Deadline <= 0 {
			r.Deadline = 5 * time.Minute
		}
		if r.Poll <= 0 {
			r.Poll = time.Second
		}
	})
}

// RunID is the value of LabelRun on this run's pods.
func (r *PodRunner) RunID() string { r.init(); return r.run }

// PodSpec is the probe pod of one cluster: a server (args nil: `kosmos probe
// serve`) or a client with its args, on the pod or host network. Pure.
func PodSpec(topology, run, namespace, image string, port int, net Net, role string, args []string, deadline time.Duration) *corev1.Pod {
	secs := int64(deadline / time.Second)
	grace := int64(1)
	no := false
	yes := true
	uid := int64(65532)
	cargs := []string{"probe", "serve", "--port", strconv.Itoa(port)}
	if role == "client" {
		cargs = append([]string{"probe", "client", "--port", strconv.Itoa(port), "--result-file", "/dev/termination-log"}, args...)
	}
	c := corev1.Container{
		Name: "probe", Image: image, Args: cargs,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	if role == "server" {
		c.Ports = []corev1.ContainerPort{{Name: "echo-tcp", ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}, {Name: "echo-udp", ContainerPort: int32(port), Protocol: corev1.ProtocolUDP}}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}, PeriodSeconds: 1}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "kosmos-probe-" + string(net) + "-" + role + "-", Namespace: namespace,
			Labels: map[string]string{
				v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: topology,
				"app.kubernetes.io/name": "kosmos-probe", LabelRun: run, LabelNet: string(net), LabelRole: role,
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, HostNetwork: net == HostNet,
			ActiveDeadlineSeconds: &secs, TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken: &no, EnableServiceLinks: &no,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{c},
		},
	}
}

func (r *PodRunner) pod(net Net, role string, args []string) *corev1.Pod {
	return PodSpec(r.Topology, r.run, r.Namespace, r.Image, r.Port, net, role, args, r.Deadline)
}

func (r *PodRunner) names() []string {
	var out []string
	for n := range r.Clusters {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Start creates the two server pods in every cluster and waits until they
// are Ready with their addresses.
func (r *PodRunner) Start(ctx context.Context) ([]Endpoint, error) {
	r.init()
	var mu sync.Mutex
	var eps []Endpoint
	var errs []error
	var wg sync.WaitGroup
	for _, name := range r.names() {
		c := r.Clusters[name]
		for _, net := range []Net{PodNet, HostNet} {
			wg.Go(func() {
				ep, err := r.startServer(ctx, name, c, net)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("cluster %s, %s network: %w", name, net, err))
					return
				}
				eps = append(eps, ep)
			})
		}
	}
	wg.Wait()
	slices.SortFunc(eps, func(a, b Endpoint) int {
		if a.Cluster != b.Cluster {
			return compare(a.Cluster, b.Cluster)
		}
		return compare(string(a.Net), string(b.Net))
	})
	return eps, errors.Join(errs...)
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *PodRunner) startServer(ctx context.Context, cluster string, c client.Client, net Net) (Endpoint, error) {
	p := r.pod(net, "server", nil)
	if err := c.Create(ctx, p); err != nil {
		if apierrors.IsNotFound(err) {
			return Endpoint{}, fmt.Errorf("create probe pod in namespace %s: %w (apply kustomize/base/probe)", r.Namespace, err)
		}
		return Endpoint{}, fmt.Errorf("create probe pod in namespace %s: %w", r.Namespace, err)
	}
	var last string
	for {
		var got corev1.Pod
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), &got); err == nil {
			if ready(&got) {
				ep := Endpoint{Cluster: cluster, Net: net, Name: got.Name}
				for _, ip := range got.Status.PodIPs {
					if a, err := netip.ParseAddr(ip.IP); err == nil {
						ep.Addrs = append(ep.Addrs, a)
					}
				}
				if len(ep.Addrs) > 0 {
					return ep, nil
				}
			}
			last = fmt.Sprintf("pod %s/%s is %s", got.Namespace, got.Name, got.Status.Phase)
			for _, cs := range got.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && w.Reason != "" {
					last += ", " + w.Reason // ImagePullBackOff: the wrong --probe-image
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return Endpoint{}, fmt.Errorf("not ready in time: %s", last)
		case <-time.After(r.Poll):
		}
	}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Probe creates one client pod per source endpoint with its targets and
// reads the answers from its termination message.
func (r *PodRunner) Probe(ctx context.Context, probes []Probe, perProbe time.Duration) []Result {
	r.init()
	type source struct {
		cluster string
		net     Net
	}
	bySource := map[source][]int{}
	var sources []source
	for i, p := range probes {
		s := source{p.From.Cluster, p.From.Net}
		if _, ok := bySource[s]; !ok {
			sources = append(sources, s)
		}
		bySource[s] = append(bySource[s], i)
	}
	out := make([]Result, len(probes))
	var wg sync.WaitGroup
	for _, s := range sources {
		wg.Go(func() {
			idx := bySource[s]
			ps := make([]Probe, len(idx))
			for j, i := range idx {
				ps[j] = probes[i]
			}
			res := r.client(ctx, r.Clusters[s.cluster], s.net, ps, perProbe)
			for j, i := range idx {
				out[i] = res[j]
			}
		})
	}
	wg.Wait()
	return out
}

func (r *PodRunner) client(ctx context.Context, c client.Client, net Net, ps []Probe, perProbe time.Duration) []Result {
	args := []string{"--per-probe", perProbe.String()}
	seen := map[string]bool{}
	for _, p := range ps {
		if t := (Target{p.Proto, p.Addr}).String(); !seen[t] {
			seen[t] = true
			args = append(args, t)
		}
	}
	fail := func(err error) []Result {
		out := make([]Result, len(ps))
		for i, p := range ps {
			out[i] = Result{Probe: p, Err: shorten(err.Error())}
		}
		return out
	}
	pod := r.pod(net, "client", args)
	if err := c.Create(ctx, pod); err != nil {
		return fail(fmt.Errorf("create client pod: %w", err))
	}
	for {
		var got corev1.Pod
		if err := c.Get(ctx, client.ObjectKeyFromObject(pod), &got); err == nil {
			for _, cs := range got.Status.ContainerStatuses {
				if t := cs.State.Terminated; t != nil {
					return ParseAnswers(t.Message, ps, fmt.Sprintf("client pod %s exited %d without an answer", got.Name, t.ExitCode))
				}
			}
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("client pod %s: no answers in time", pod.Name))
		case <-time.After(r.Poll):
		}
	}
}

// ExportServices exports a probe Service of every cluster's pod-network
// server pod (its selector) and waits for the imports (services.go).
func (r *PodRunner) ExportServices(ctx context.Context, eps []Endpoint) ([]ServiceVIP, []string, error) {
	r.init()
	r.services = &Exporter{Clusters: r.Clusters, Namespace: r.Namespace, Run: r.run, Port: r.Port, Poll: r.Poll, MaxAge: r.Deadline,
		Backend: func(svc *corev1.Service, _ Endpoint) []client.Object {
			svc.Spec.Selector = map[string]string{LabelRun: r.run, LabelNet: string(PodNet), LabelRole: "server"}
			return nil
		}}
	return r.services.Export(ctx, eps)
}

// Close deletes every pod of the run in every cluster, and the probe
// services.
func (r *PodRunner) Close(ctx context.Context) error {
	r.init()
	var errs []error
	if r.services != nil {
		errs = append(errs, r.services.Close(ctx))
	}
	for _, name := range r.names() {
		c := r.Clusters[name]
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(r.Namespace), client.MatchingLabels{LabelRun: r.run, v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: list probe pods: %w", name, err))
			continue
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			err := c.Delete(ctx, p, client.GracePeriodSeconds(0), client.Preconditions{UID: &p.UID})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("cluster %s: delete probe pod %s/%s: %w", name, p.Namespace, p.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
