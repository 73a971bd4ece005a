package sandbox

// Exported services in the sandbox's data plane.
//
// kosmos check --probe also probes exported services' ClusterSetIPs
// (internal/probe, services.go). On a real cluster the probe's Service
// selects its server pod and kube-proxy makes the VIP reach it. The
// sandbox runs neither pods nor kube-proxy, so the NetnsRunner plays
// their two parts, and only those, from the real objects:
//
//   - the EndpointSlice controller's: each cluster's probe Service has no
//     selector and the runner writes its EndpointSlice, naming the address
//     of the pod namespace where the echo server listens (as the
//     controller would for a Ready pod there);
//   - kube-proxy's: once the Kosmos reconciler has imported every probe
//     service into every other cluster (ServiceImport with the ClusterSetIP
//     of its derived Service, EndpointSlices with the exporter's endpoints
//     as the importer reaches them), the runner reads that derived Service
//     and those slices in the importing cluster and writes the nat rules
//     kube-proxy's iptables mode would (networld.ProxyRules) into the node namespace
//     the probes leave from: a jump first in PREROUTING (pods) and OUTPUT
//     (the host network) to KPROBE-<run>, per VIP and port a DNAT to the
//     imported endpoints. A real node reaches a ClusterIP by its default
//     route; the sandbox's machines have none, so the VIP gets a route over
//     the machine's underlay device instead.
//
// Everything the reconciler decides (the import, its VIP, the translated
// endpoint addresses) is what the packets follow; a wrong or unreachable
// endpoint fails the pair. The rules, routes and objects go when the run
// ends.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/reconciler/mcs"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// probeSlices are the EndpointSlices of a probe Service in the sandbox:
// one per address family of the endpoint, its pod namespace's address,
// ready, at the echo port. Pure.
func probeSlices(svc *corev1.Service, ep probe.Endpoint) []client.Object {
	var out []client.Object
	for _, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		var addrs []string
		for _, a := range ep.Addrs {
			if a.Is4() == (fam == discoveryv1.AddressTypeIPv4) {
				addrs = append(addrs, a.String())
			}
		}
		if len(addrs) == 0 {
			continue
		}
		labels := map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "probe.kosmos.io"}
		for k, v := range svc.Labels {
			labels[k] = v
		}
		s := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + "-" + strings.ToLower(string(fam)), Labels: labels},
			AddressType: fam,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}}},
		}
		for _, sp := range svc.Spec.Ports {
			s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptrTo(sp.Name), Protocol: ptrTo(sp.Protocol), Port: ptrTo(sp.TargetPort.IntVal)})
		}
		out = append(out, s)
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

// natInstall is what the runner wrote into one node namespace.
type natInstall struct {
	ns     string
	root   string
	v6     []bool
	routes []netip.Prefix
}

// ExportServices exports a probe service of every cluster's pod namespace
// and, once imported, plays kube-proxy's part in the importing clusters'
// probe machines (see the top of this file). It needs Clusters.
func (r *NetnsRunner) ExportServices(ctx context.Context, eps []probe.Endpoint) ([]probe.ServiceVIP, []string, error) {
	if len(r.Clusters) == 0 {
		return nil, nil, errors.New("the sandbox's probe runner has no API clients: services not probed")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	var errs []error
	for name, c := range r.Clusters {
		if err := ensureProbeNamespace(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", name, err))
		}
	}
	r.exporter = &probe.Exporter{Clusters: r.Clusters, Namespace: probe.DefaultNamespace, Run: run, Port: r.port(), Poll: 200 * time.Millisecond,
		Backend: func(svc *corev1.Service, ep probe.Endpoint) []client.Object { return probeSlices(svc, ep) }}
	vips, noMCS, err := r.exporter.Export(ctx, eps)
	errs = append(errs, err)
	byImporter := map[string][]int{}
	var importers []string
	for i, v := range vips {
		if v.Err != "" {
			continue
		}
		if _, ok := byImporter[v.Importer]; !ok {
			importers = append(importers, v.Importer)
		}
		byImporter[v.Importer] = append(byImporter[v.Importer], i)
	}
	for _, imp := range importers {
		if err := r.kubeProxy(ctx, imp, "KPROBE-"+run, vips, byImporter[imp]); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", imp, err))
		}
	}
	return vips, noMCS, errors.Join(errs...)
}

// ensureProbeNamespace creates the probe namespace where it is missing,
// as kustomize/base/probe would (the reconciler imports only into
// namespaces that exist). It stays: the next run needs it again.
func ensureProbeNamespace(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probe.DefaultNamespace, Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", probe.DefaultNamespace, err)
	}
	return nil
}

// kubeProxy waits for the derived Service and imported endpoints of each
// of the importer's VIPs (an unfinished one gets its Err) and writes their
// nat rules and routes into the importer's probe machine.
func (r *NetnsRunner) kubeProxy(ctx context.Context, importer, root string, vips []probe.ServiceVIP, idx []int) error {
	c := r.Clusters[importer]
	if len(r.Nodes[importer]) == 0 {
		return fmt.Errorf("no machine of %s in the data plane", importer)
	}
	var svcs []networld.ProxyService
	for _, i := range idx {
		v := &vips[i]
		ns, name, _ := strings.Cut(v.Service, "/")
		var got []networld.ProxyService
		var last string
		for {
			var svc corev1.Service
			var eps discoveryv1.EndpointSliceList
			derived := mcs.DerivedName(name)
			switch err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: derived}, &svc); {
			case err != nil:
				last = fmt.Sprintf("derived Service %s/%s: %v", ns, derived, err)
			default:
				if err := c.List(ctx, &eps, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: derived}); err != nil {
					last = fmt.Sprintf("EndpointSlices of %s/%s: %v", ns, derived, err)
					break
				}
				got = networld.ProxyServicesOf(&svc, eps.Items)
				if hasTargets(got) {
					break
				}
				last = fmt.Sprintf("derived Service %s/%s has no imported endpoints", ns, derived)
				got = nil
			}
			if got != nil {
				break
			}
			select {
			case <-ctx.Done():
				v.Err, v.Addrs = fmt.Sprintf("in %s: %s (the sandbox's kube-proxy has nothing to program)", importer, last), nil
			case <-time.After(200 * time.Millisecond):
				continue
			}
			break
		}
		svcs = append(svcs, got...)
	}
	if len(svcs) == 0 {
		return nil
	}
	n := r.Nodes[importer][0]
	inst := natInstall{ns: (&networld.World{Prefix: r.Prefix}).NodeNS(importer, n.Name), root: root}
	r.nats = append(r.nats, &inst)
	chains := networld.ProxyChains{Root: root, Service: root + "-", Endpoint: root + "-", First: true,
		ClusterCIDRs: r.podCIDRs(importer), Mark: root + "-MARK", Post: root + "-POST"}
	var errs []error
	for _, v6 := range []bool{false, true} {
		rules := networld.ProxyRules(chains, svcs, v6)
		if rules == "" {
			continue
		}
		restore := "iptables-restore"
		if v6 {
			restore = "ip6tables-restore"
		}
		if out, err := runStdin(rules, "ip", "netns", "exec", inst.ns, restore, "-w", "5", "--noflush"); err != nil {
			errs = append(errs, fmt.Errorf("%s in %s: %w: %s", restore, inst.ns, err, strings.TrimSpace(out)))
			continue
		}
		inst.v6 = append(inst.v6, v6)
	}
	for _, s := range svcs {
		route := netip.PrefixFrom(s.VIP, s.VIP.BitLen())
		if slices.Contains(inst.routes, route) {
			continue
		}
		if _, err := networld.Run("ip", "-n", inst.ns, "route", "replace", route.String(), "dev", "eth0"); err != nil {
			errs = append(errs, err)
			continue
		}
		inst.routes = append(inst.routes, route)
	}
	return errors.Join(errs...)
}

// podCIDRs are the pod ranges the topology states for cluster: kube-proxy's
// --cluster-cidr, so that the host network's connections to a VIP are
// masqueraded as a real kube-proxy does (else their replies, from a pod
// behind a gateway, may come back straight over the shared underlay,
// untranslated).
func (r *NetnsRunner) podCIDRs(cluster string) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range r.Topology.Spec.Clusters {
		if c.Name != cluster {
			continue
		}
		for _, s := range c.Network.PodCIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

func hasTargets(svcs []networld.ProxyService) bool {
	for _, s := range svcs {
		for _, p := range s.Ports {
			if len(p.Targets) > 0 {
				return true
			}
		}
	}
	return false
}

// closeServices removes the nat rules and routes, then the probe objects.
func (r *NetnsRunner) closeServices(ctx context.Context) error {
	var errs []error
	for _, inst := range r.nats {
		for _, route := range inst.routes {
			if _, err := networld.Run("ip", "-n", inst.ns, "route", "del", route.String(), "dev", "eth0"); err != nil {
				errs = append(errs, err)
			}
		}
		for _, v6 := range inst.v6 {
			errs = append(errs, removeChains(inst.ns, inst.root, v6))
		}
	}
	r.nats = nil
	if r.exporter != nil {
		errs = append(errs, r.exporter.Close(ctx))
		r.exporter = nil
	}
	return errors.Join(errs...)
}

// removeChains deletes the jumps to root and every nat chain named root or
// root-…, nothing else.
func removeChains(ns, root string, v6 bool) error {
	ipt := "iptables"
	if v6 {
		ipt = "ip6tables"
	}
	var errs []error
	for _, from := range []string{"PREROUTING", "OUTPUT"} {
		if _, err := networld.InNS(ns, ipt, "-w", "-t", "nat", "-D", from, "-j", root); err != nil {
			errs = append(errs, err)
		}
	}
	out, err := networld.InNS(ns, ipt, "-w", "-t", "nat", "-S")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var chains []string
	for _, line := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(line, "-N "); ok && (c == root || strings.HasPrefix(c, root+"-")) {
			chains = append(chains, c)
		}
		if line == "-A POSTROUTING -j "+root+"-POST" { // the masquerade's jump, when rendered
			if _, err := networld.InNS(ns, ipt, "-w", "-t", "nat", "-D", "POSTROUTING", "-j", root+"-POST"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, op := range []string{"-F", "-X"} {
		for _, c := range chains {
			if _, err := networld.InNS(ns, ipt, "-w", "-t", "nat", op, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// runStdin runs a command with input on its standard input.
func runStdin(input, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
