package probe

// Probing exported services' addresses.
//
// Pods reaching pods is half of what users debug; the other half is "the
// service I exported does not answer from the other cluster". So a run
// (Options.Services) also exports a probe service of its own and sends
// real packets to it through the clusterset VIP, the way an application
// would:
//
//   - every cluster with a pod-network probe endpoint gets a short-lived
//     Service ServiceName(run, cluster) in the probe namespace whose only
//     backend is that endpoint's echo server (a selector of the server pod;
//     in the sandbox, which runs no pods, an EndpointSlice naming the pod
//     namespace's address), and a ServiceExport of it;
//   - the Kosmos reconciler imports each of them into every other cluster:
//     a ServiceImport whose spec.ips is the ClusterSetIP of the derived
//     Service (reconciler/mcs, derived.go), balanced by the cluster's
//     kube-proxy over the imported EndpointSlices;
//   - the run waits until every other cluster's import has a ClusterSetIP,
//     then probes it from that cluster's pod and host network, TCP and UDP
//     echo (a ClusterIP does not answer ICMP: kube-proxy only translates
//     the ports of the Service). One exported service per cluster, so each
//     VIP has one backend and a row names one service pair:
//     "probe service A/pod-net → B".
//
// The probe's Service and ServiceExport carry the Kosmos managed-by label
// and the run's label, but not the topology label: the reconciler takes an
// export with both as one it wrote for spec.services, and would ignore it.
// They are deleted when the run ends (also on Ctrl-C), with a UID
// precondition, and only those this run created.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// ServiceVIP is how one cluster (Importer) reaches the probe service
// another (Exporter) exported: the ClusterSetIPs of its ServiceImport, or
// Err saying why there are none.
type ServiceVIP struct {
	Importer, Exporter string
	// Service is "namespace/name" of the ServiceImport.
	Service string
	Addrs   []netip.Addr
	Err     string
}

// ServiceRunner is a Runner that can also probe exported services.
type ServiceRunner interface {
	Runner
	// ExportServices exports a probe service of every cluster's pod-network
	// endpoint (removed again by Close) and waits until every other
	// cluster imports it with a ClusterSetIP, at most until ctx ends. It
	// returns one ServiceVIP per ordered pair of clusters that both have
	// the MCS API, the clusters that lack it (no ServiceExport kind), and
	// an error naming what else went wrong (e.g. RBAC).
	ExportServices(ctx context.Context, eps []Endpoint) (vips []ServiceVIP, noMCS []string, err error)
}

// onlyForbidden tells whether every error err joins is the API server's
// Forbidden. Pure.
func onlyForbidden(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil && !onlyForbidden(e) {
				return false
			}
		}
		return len(j.Unwrap()) > 0
	}
	if w := errors.Unwrap(err); w != nil {
		if _, ok := w.(interface{ Unwrap() []error }); ok {
			return onlyForbidden(w)
		}
	}
	return apierrors.IsForbidden(err)
}

// ServiceName is the name of the probe Service (and ServiceExport and
// ServiceImport) that cluster exports in run: "kosmos-probe-<run>-<cluster>",
// or, when that is longer than a DNS label, the cluster's name cut and an
// FNV-32a hash of it instead; a run ID so long that not even that fits is
// cut too, and the hash is of both. It never panics.
func ServiceName(run, cluster string) string {
	name := "kosmos-probe-" + run + "-" + cluster
	if len(name) <= 63 {
		return name
	}
	h := fnv.New32a()
	head := "kosmos-probe-" + run + "-"
	if len(head) <= 63-9-1 {
		_, _ = h.Write([]byte(cluster))
		return fmt.Sprintf("%s%s-%08x", head, strings.TrimRight(cluster[:63-len(head)-9], "-"), h.Sum32())
	}
	_, _ = h.Write([]byte(run + "/" + cluster))
	return fmt.Sprintf("%s-%08x", strings.TrimRight(name[:63-9], "-"), h.Sum32())
}

// ServiceProtos are the protocols a ClusterSetIP is probed by: the
// Service's ports; ICMP is left out (a ClusterIP does not answer it).
func ServiceProtos(protos []Proto) []Proto {
	return slices.DeleteFunc(slices.Clone(protos), func(p Proto) bool { return p == ICMP })
}

// PlanServices lists the probes of the exported services: for every VIP,
// from each endpoint of the importing cluster (pod and host network) to
// each ClusterSetIP of the family it has, by every protocol but ICMP; the
// probe's To is the exporter's pod endpoint (the VIP's one backend). A VIP
// with Err becomes a failed result per source endpoint instead. Pure.
func PlanServices(eps []Endpoint, vips []ServiceVIP, protos []Proto) ([]Probe, []Result) {
	protos = ServiceProtos(protos)
	var probes []Probe
	var failed []Result
	for _, v := range vips {
		to := Endpoint{Cluster: v.Exporter, Net: PodNet}
		if i := slices.IndexFunc(eps, func(e Endpoint) bool { return e.Cluster == v.Exporter && e.Net == PodNet }); i >= 0 {
			to = eps[i]
		}
		for _, src := range eps {
			if src.Cluster != v.Importer {
				continue
			}
			if v.Err != "" {
				failed = append(failed, Result{Probe: Probe{From: src, To: to, Service: v.Service}, Err: v.Err})
				continue
			}
			for _, a := range v.Addrs {
				if !slices.ContainsFunc(src.Addrs, func(s netip.Addr) bool { return s.Is4() == a.Is4() }) {
					continue
				}
				for _, p := range protos {
					probes = append(probes, Probe{From: src, To: to, Addr: a, Proto: p, Service: v.Service})
				}
			}
		}
	}
	return probes, failed
}

// ServicesRow is the "probe services" row: SKIP with a hint when err is
// only the API server's Forbidden (the Role lacks services), FAIL with any
// other err, SKIP naming the clusters without the MCS API, else PASS with how many imports have a
// ClusterSetIP. Pure.
func ServicesRow(vips []ServiceVIP, noMCS []string, err error) check.Check {
	row := check.Check{Name: "probe services", Result: "PASS"}
	up := 0
	for _, v := range vips {
		if v.Err == "" && len(v.Addrs) > 0 {
			up++
		}
	}
	row.Detail = fmt.Sprintf("%d of %d imports of the probe services have a ClusterSetIP", up, len(vips))
	switch {
	case err != nil && onlyForbidden(err):
		row.Result = "SKIP"
		row.Detail = "not allowed to create or read the probe Services and ServiceExports (a probe Role from before --services): reapply kustomize/base/probe in every cluster, or pass --services=false; " + err.Error()
	case err != nil:
		row.Result, row.Detail = "FAIL", err.Error()
	case len(noMCS) > 0:
		row.Result = "SKIP"
		row.Detail = fmt.Sprintf("no MCS API (ServiceExport) in %s: install the MCS CRDs (kustomize/base/crds) to probe services there, or pass --services=false; %s",
			strings.Join(noMCS, ", "), row.Detail)
	}
	return row
}

// ProbeService is the probe Service one cluster exports in run: no
// topology label (see the top of this file), the echo port over TCP and
// UDP, to the same port of its backend. Pure.
func ProbeService(namespace, run, cluster string, port int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ServiceName(run, cluster), Labels: serviceLabels(run)},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{
				{Name: "echo-tcp", Protocol: corev1.ProtocolTCP, Port: int32(port), TargetPort: intstr.FromInt32(int32(port))},
				{Name: "echo-udp", Protocol: corev1.ProtocolUDP, Port: int32(port), TargetPort: intstr.FromInt32(int32(port))},
			},
		},
	}
}

func serviceLabels(run string) map[string]string {
	return map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, "app.kubernetes.io/name": "kosmos-probe", LabelRun: run}
}

// Exporter creates the probe services of one run in every cluster, waits
// for their imports and deletes what it created. PodRunner and the
// sandbox's runner share it; they differ only in how a Service reaches its
// backend (Backend).
type Exporter struct {
	// Clusters are the clients by cluster name; their schemes know the MCS
	// types.
	Clusters map[string]client.Client
	// Namespace of the probe services (it must exist in every cluster: the
	// reconciler imports only where the namespace is).
	Namespace string
	Run       string
	Port      int
	// Poll is how often imports are read (default 1 s).
	Poll time.Duration
	// MaxAge: another run's probe objects older than this are left over
	// from a killed check and swept before the export (sweep.go; default
	// DefaultMaxAge).
	MaxAge time.Duration
	// Backend makes a cluster's probe Service reach the endpoint ep (set a
	// selector, or return objects such as an EndpointSlice to create after
	// the Service and before the export).
	Backend func(svc *corev1.Service, ep Endpoint) []client.Object

	mu      sync.Mutex
	created []createdObject
}

type createdObject struct {
	cluster string
	obj     client.Object
}

// Export creates the services and exports, then waits for the imports
// (ServiceRunner.ExportServices).
func (x *Exporter) Export(ctx context.Context, eps []Endpoint) ([]ServiceVIP, []string, error) {
	var noMCS []string
	var errs []error
	if _, err := x.Sweep(ctx); err != nil { // sweep.go
		errs = append(errs, err)
	}
	var exporters []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ep := range eps {
		c := x.Clusters[ep.Cluster]
		if ep.Net != PodNet || c == nil {
			continue
		}
		wg.Go(func() {
			err := x.exportOne(ctx, c, ep)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case meta.IsNoMatchError(err):
				noMCS = append(noMCS, ep.Cluster)
			case err != nil:
				errs = append(errs, fmt.Errorf("cluster %s: %w", ep.Cluster, err))
			default:
				exporters = append(exporters, ep.Cluster)
			}
		})
	}
	wg.Wait()
	slices.Sort(noMCS)
	slices.Sort(exporters)
	var importers []string
	for _, ep := range eps {
		if x.Clusters[ep.Cluster] != nil && !slices.Contains(noMCS, ep.Cluster) && !slices.Contains(importers, ep.Cluster) {
			importers = append(importers, ep.Cluster)
		}
	}
	slices.Sort(importers)
	var vips []ServiceVIP
	for _, imp := range importers {
		for _, exp := range exporters {
			if imp != exp {
				vips = append(vips, ServiceVIP{Importer: imp, Exporter: exp, Service: x.Namespace + "/" + ServiceName(x.Run, exp)})
			}
		}
	}
	for i := range vips {
		wg.Go(func() { x.await(ctx, &vips[i]) })
	}
	wg.Wait()
	return vips, noMCS, errors.Join(errs...)
}

func (x *Exporter) exportOne(ctx context.Context, c client.Client, ep Endpoint) error {
	svc := ProbeService(x.Namespace, x.Run, ep.Cluster, x.Port)
	var more []client.Object
	if x.Backend != nil {
		more = x.Backend(svc, ep)
	}
	exp := &mcsv1a1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name, Labels: serviceLabels(x.Run)}}
	// The export last: the reconciler's pass it wakes finds the Service and
	// its backend (a cluster without the MCS API fails there, and Close
	// removes the rest).
	for _, o := range append(append([]client.Object{svc}, more...), exp) {
		if err := c.Create(ctx, o); err != nil {
			if ctx.Err() != nil {
				// Cancelled in flight (Ctrl-C): the API server may have
				// created it all the same. Close looks it up by name.
				x.mu.Lock()
				x.created = append(x.created, createdObject{ep.Cluster, o})
				x.mu.Unlock()
			}
			kind := fmt.Sprintf("%T", o)
			kind = kind[strings.LastIndex(kind, ".")+1:]
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
				return fmt.Errorf("create %s %s/%s: %w (apply kustomize/base/probe)", kind, o.GetNamespace(), o.GetName(), err)
			}
			if meta.IsNoMatchError(err) {
				return err
			}
			return fmt.Errorf("create %s %s/%s: %w", kind, o.GetNamespace(), o.GetName(), err)
		}
		x.mu.Lock()
		x.created = append(x.created, createdObject{ep.Cluster, o})
		x.mu.Unlock()
	}
	return nil
}

// await polls the importer's ServiceImport until it has a ClusterSetIP or
// ctx ends (then v.Err says what was missing).
func (x *Exporter) await(ctx context.Context, v *ServiceVIP) {
	c := x.Clusters[v.Importer]
	poll := x.Poll
	if poll <= 0 {
		poll = time.Second
	}
	ns, name, _ := strings.Cut(v.Service, "/")
	start := time.Now()
	for {
		var si mcsv1a1.ServiceImport
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &si)
		var last string
		switch {
		case apierrors.IsNotFound(err):
			last = fmt.Sprintf("no ServiceImport %s in %s", v.Service, v.Importer)
		case err != nil:
			last = fmt.Sprintf("read ServiceImport %s in %s: %v", v.Service, v.Importer, err)
		case len(si.Spec.IPs) == 0:
			last = fmt.Sprintf("ServiceImport %s in %s has no ClusterSetIP", v.Service, v.Importer)
		default:
			for _, ip := range si.Spec.IPs {
				if a, err := netip.ParseAddr(ip); err == nil {
					v.Addrs = append(v.Addrs, a)
				}
			}
			if len(v.Addrs) > 0 {
				return
			}
			last = fmt.Sprintf("ServiceImport %s in %s has no valid ClusterSetIP (%v)", v.Service, v.Importer, si.Spec.IPs)
		}
		select {
		case <-ctx.Done():
			v.Err = fmt.Sprintf("%s after %s (is the Kosmos reconciler running, with namespace %s in every cluster?)", last, time.Since(start).Round(time.Second), ns)
			return
		case <-time.After(poll):
		}
	}
}

// Close deletes what Export created, newest first, each with its UID as
// precondition (never another's object of the same name); an object whose
// create was cancelled in flight is read back by name and deleted only
// when it carries the run's label.
func (x *Exporter) Close(ctx context.Context) error {
	x.mu.Lock()
	created := x.created
	x.created = nil
	x.mu.Unlock()
	var errs []error
	for i := len(created) - 1; i >= 0; i-- {
		o := created[i]
		c := x.Clusters[o.cluster]
		uid := o.obj.GetUID()
		if uid == "" { // its create was cancelled in flight: ours only if it carries the run's label
			live := o.obj.DeepCopyObject().(client.Object)
			err := c.Get(ctx, client.ObjectKeyFromObject(o.obj), live)
			if apierrors.IsNotFound(err) || (err == nil && live.GetLabels()[LabelRun] != x.Run) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("cluster %s: read probe object %s/%s: %w", o.cluster, o.obj.GetNamespace(), o.obj.GetName(), err))
				continue
			}
			uid = live.GetUID()
		}
		err := c.Delete(ctx, o.obj, client.Preconditions{UID: &uid})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("cluster %s: delete probe object %s/%s: %w", o.cluster, o.obj.GetNamespace(), o.obj.GetName(), err))
		}
	}
	return errors.Join(errs...)
}
