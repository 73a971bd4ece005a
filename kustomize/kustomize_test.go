// Package kustomize_test proves the deployable packaging: every overlay
// builds with the kustomize API, a real API server accepts every object it
// yields (server-side apply, dry run), the workloads keep the security and
// probe rules, and the RBAC of each component is enough for the component's
// real code path and no more (rbac_test.go).
package kustomize_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// overlays are the directories a user deploys.
var overlays = []string{"overlays/host", "overlays/member", "overlays/example"}

// deployables are the overlays and the example built on them that follows a
// topology file (components/topology-file): everything tested as deployed.
var deployables = append(slices.Clone(overlays), "examples/topology-file")

// crdDir holds the CRDs the test API server is started with.
var crdDir = filepath.Join("base", "crds")

// build runs kustomize on dir, as `kustomize build` would.
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			t.Fatalf("kustomize build %s: %s: %v", dir, r.CurId(), err)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	if len(out) == 0 {
		t.Fatalf("kustomize build %s: no objects", dir)
	}
	return out
}

// objKey names an object in failure messages.
func objKey(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + "/" + ns + "/" + u.GetName()
	}
	return u.GetKind() + "/" + u.GetName()
}

// convert turns an unstructured object into a typed one.
func convert(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s: %v", objKey(u), err)
	}
}

// applier server-side applies unstructured objects through discovery.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// apply server-side applies u with field manager kosmos-test, as a dry run
// (nothing stored) when dryRun is set.
func (a *applier) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		a.mapper.Reset() // a CRD may have been installed since discovery
		if m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("no API for %s: %w", gvk, err)
		}
	}
	opts := metav1.ApplyOptions{FieldManager: "kosmos-test", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if u.GetNamespace() != "" {
		ri = a.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	_, err = ri.Apply(ctx, u.GetName(), u, opts)
	return err
}

// TestOverlaysAcceptedByAPIServer builds every overlay and offers every
// object to one real API server (with the Kosmos and MCS CRDs installed, so
// custom resources are validated against their schemas) in a server-side
// apply dry run. The namespaces are created for real first, as `kubectl
// apply` of the overlay would. It fails listing every rejected object.
func TestOverlaysAcceptedByAPIServer(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host"}, CRDDirs: []string{crdDir}})
	cfg := env.Cluster("host").Config
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := newApplier(t, cfg)
	ctx := context.Background()
	for _, dir := range deployables {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := build(t, dir)
			for _, u := range objs {
				if u.GetKind() != "Namespace" {
					continue
				}
				_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: u.GetName()}}, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatalf("create namespace %s: %v", u.GetName(), err)
				}
			}
			var rejected []string
			for _, u := range objs {
				if err := a.apply(ctx, u, true); err != nil {
					rejected = append(rejected, fmt.Sprintf("  %s: %v", objKey(u), err))
				}
			}
			if len(rejected) > 0 {
				t.Fatalf("%s: the API server rejected %d of %d objects:\n%s", dir, len(rejected), len(objs), strings.Join(rejected, "\n"))
			}
			t.Logf("%s: %d objects accepted", dir, len(objs))
		})
	}
}

// workloads returns the pod templates of the Deployments and DaemonSets.
func workloads(t *testing.T, objs []*unstructured.Unstructured) map[string]corev1.PodTemplateSpec {
	t.Helper()
	out := map[string]corev1.PodTemplateSpec{}
	for _, u := range objs {
		switch u.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			convert(t, u, &d)
			out[objKey(u)] = d.Spec.Template
		case "DaemonSet":
			var d appsv1.DaemonSet
			convert(t, u, &d)
			out[objKey(u)] = d.Spec.Template
		}
	}
	return out
}

// TestOverlayRules checks, in every overlay's output, the rules the
// packaging promises: the agent runs on the host network with exactly
// NET_ADMIN and NET_RAW added and is not privileged; every container has
// liveness and readiness probes, a port named metrics, resource requests
// and limits, and the one Kosmos image; every workload has a
// ServiceAccount of its own; no Role or ClusterRole grants a wildcard.
func TestOverlayRules(t *testing.T) {
	want := map[string][]string{
		"overlays/host":          {"DaemonSet/kosmos-system/kosmos-agent", "Deployment/kosmos-system/kosmos-dns", "Deployment/kosmos-system/kosmos-reconciler", "Deployment/kosmos-system/kosmos-scheduler", "Deployment/kosmos-system/kosmos-tree"},
		"overlays/member":        {"DaemonSet/kosmos-system/kosmos-agent", "Deployment/kosmos-system/kosmos-dns"},
		"overlays/example":       {"DaemonSet/kosmos-system/kosmos-agent", "Deployment/kosmos-system/kosmos-dns", "Deployment/kosmos-system/kosmos-reconciler", "Deployment/kosmos-system/kosmos-scheduler", "Deployment/kosmos-system/kosmos-tree"},
		"examples/topology-file": {"DaemonSet/kosmos-system/kosmos-agent", "Deployment/kosmos-system/kosmos-dns", "Deployment/kosmos-system/kosmos-reconciler", "Deployment/kosmos-system/kosmos-scheduler", "Deployment/kosmos-system/kosmos-tree"},
	}
	for _, dir := range deployables {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := build(t, dir)
			ws := workloads(t, objs)
			var got []string
			for k := range ws {
				got = append(got, k)
			}
			sort.Strings(got)
			if !slices.Equal(got, want[dir]) {
				t.Errorf("workloads = %v, want %v", got, want[dir])
			}
			accounts := map[string]bool{}
			for _, u := range objs {
				if u.GetKind() == "ServiceAccount" {
					accounts[u.GetNamespace()+"/"+u.GetName()] = true
				}
			}
			usedBy := map[string]string{}
			for key, tmpl := range ws {
				checkPodTemplate(t, key, tmpl)
				sa := tmpl.Spec.ServiceAccountName
				switch {
				case sa == "" || sa == "default":
					t.Errorf("%s: runs as the default ServiceAccount", key)
				case !accounts["kosmos-system/"+sa]:
					t.Errorf("%s: ServiceAccount %s is not in the overlay", key, sa)
				case usedBy[sa] != "":
					t.Errorf("%s: shares ServiceAccount %s with %s", key, sa, usedBy[sa])
				}
				usedBy[sa] = key
			}
			checkAgent(t, ws["DaemonSet/kosmos-system/kosmos-agent"])
			checkNoWildcards(t, objs)
			checkNoLongLivedTokens(t, objs)
			checkTopologyWiring(t, objs, ws)
		})
	}
}

// checkNoLongLivedTokens: no overlay ships a ServiceAccount token Secret
// (kubernetes.io/service-account-token), which never expires; members'
// kubeconfig Secrets carry short-lived tokens (kubectl create token
// --duration), rotated as kustomize/README.md says.
func checkNoLongLivedTokens(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if typ, _, _ := unstructured.NestedString(u.Object, "type"); u.GetKind() == "Secret" && typ == string(corev1.SecretTypeServiceAccountToken) {
			t.Errorf("%s: a long-lived ServiceAccount token; use short-lived tokens instead", objKey(u))
		}
	}
}

// commands are the kosmos commands the workloads run, by workload name.
var commands = map[string]string{
	"kosmos-agent": "agent", "kosmos-dns": "dns", "kosmos-reconciler": "reconcile",
	"kosmos-scheduler": "scheduler", "kosmos-tree": "tree",
}

// checkPodTemplate checks one workload's containers.
func checkPodTemplate(t *testing.T, key string, tmpl corev1.PodTemplateSpec) {
	t.Helper()
	if len(tmpl.Spec.Containers) == 0 {
		t.Errorf("%s: no containers", key)
	}
	for _, c := range tmpl.Spec.Containers {
		where := key + " container " + c.Name
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s: wants both a liveness and a readiness probe", where)
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }) {
			t.Errorf("%s: no port named metrics", where)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: wants cpu and memory requests and a memory limit, has %v", where, c.Resources)
		}
		if !strings.HasPrefix(c.Image, "ghcr.io/kosmos-io/kosmos:") {
			t.Errorf("%s: image %q is not the Kosmos image", where, c.Image)
		}
		if cmd := commands[key[strings.LastIndex(key, "/")+1:]]; len(c.Args) == 0 || c.Args[0] != cmd {
			t.Errorf("%s: first argument %v is not the component's command", where, c.Args)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: wants allowPrivilegeEscalation false and a read-only root filesystem", where)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: wants capabilities drop ALL", where)
		}
		if !strings.HasSuffix(key, "kosmos-agent") {
			psc := tmpl.Spec.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Errorf("%s: wants runAsNonRoot", where)
			}
		}
	}
}

// checkAgent checks the node agent's privileges: host network, exactly
// NET_ADMIN and NET_RAW, never privileged, NODE_NAME from the downward API.
func checkAgent(t *testing.T, tmpl corev1.PodTemplateSpec) {
	t.Helper()
	if !tmpl.Spec.HostNetwork {
		t.Error("agent: not on the host network")
	}
	if len(tmpl.Spec.Containers) != 1 {
		t.Fatalf("agent: %d containers, want 1", len(tmpl.Spec.Containers))
	}
	c := tmpl.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged {
		t.Error("agent: must say privileged: false")
	}
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("agent: no capabilities")
	}
	var added []string
	for _, c := range sc.Capabilities.Add {
		added = append(added, string(c))
	}
	sort.Strings(added)
	if !slices.Equal(added, []string{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("agent: capabilities added %v, want exactly [NET_ADMIN NET_RAW]", added)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}) {
		t.Error("agent: NODE_NAME does not come from spec.nodeName")
	}
}

// checkTopologyWiring checks that the reconciler follows the overlay's
// topology (its KosmosTopology object, or a valid topology file in a
// ConfigMap mounted where --topology points) and that kosmos dns is told
// which cluster it runs in: the topology's host cluster where there is a
// reconciler, some name other than the base's placeholder elsewhere.
func checkTopologyWiring(t *testing.T, objs []*unstructured.Unstructured, ws map[string]corev1.PodTemplateSpec) {
	t.Helper()
	var object *v1alpha1.KosmosTopology
	configMaps := map[string]*corev1.ConfigMap{}
	for _, u := range objs {
		switch u.GetKind() {
		case "KosmosTopology":
			object = &v1alpha1.KosmosTopology{}
			convert(t, u, object)
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			convert(t, u, cm)
			configMaps[cm.Name] = cm
		}
	}
	cluster := ""
	for _, c := range ws["Deployment/kosmos-system/kosmos-dns"].Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "KOSMOS_CLUSTER" {
				cluster = e.Value
			}
		}
	}
	if cluster == "" || cluster == "set-by-overlay" {
		t.Errorf("kosmos dns: KOSMOS_CLUSTER is %q; the overlay must name its cluster", cluster)
	}
	rec, ok := ws["Deployment/kosmos-system/kosmos-reconciler"]
	if !ok {
		if object != nil {
			t.Error("a KosmosTopology without a reconciler to follow it")
		}
		return
	}
	topo := object
	args := rec.Spec.Containers[0].Args
	if i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--topology=") }); i >= 0 {
		if object != nil {
			t.Errorf("the reconciler follows a file (%s) but the overlay also holds KosmosTopology %s", args[i], object.Name)
		}
		topo = topologyFile(t, strings.TrimPrefix(args[i], "--topology="), rec.Spec, configMaps)
	} else if object == nil {
		t.Fatalf("the reconciler (args %v) has neither a KosmosTopology nor a topology file to follow", args)
	} else if want := "--topology-object=" + object.Namespace + "/" + object.Name; !slices.Contains(args, want) {
		t.Errorf("reconciler args %v do not follow the overlay's topology (%s)", args, want)
	}
	host := ""
	for _, c := range topo.Spec.Clusters {
		if c.Role == v1alpha1.RoleHost {
			host = c.Name
		}
	}
	if cluster != host {
		t.Errorf("kosmos dns in the host: KOSMOS_CLUSTER %q, the topology's host cluster is %q", cluster, host)
	}
}

// topologyFile finds the topology file a pod reads at path (a ConfigMap
// key mounted in its container) and loads it as `kosmos validate` does.
func topologyFile(t *testing.T, path string, pod corev1.PodSpec, configMaps map[string]*corev1.ConfigMap) *v1alpha1.KosmosTopology {
	t.Helper()
	dir, key := filepath.Dir(path), filepath.Base(path)
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("topology file %s: ConfigMap %s is not in the overlay", path, v.ConfigMap.Name)
			}
			data, ok := cm.Data[key]
			if !ok {
				t.Fatalf("topology file %s: ConfigMap %s has no key %s", path, cm.Name, key)
			}
			topo, err := schema.Load(cm.Name+"/"+key, []byte(data))
			if err != nil {
				t.Fatalf("topology file %s: %v", path, err)
			}
			return topo
		}
	}
	t.Fatalf("topology file %s: no ConfigMap volume mounted at %s", path, dir)
	return nil
}

// checkNoWildcards fails on any rule granting every verb, resource or API
// group.
func checkNoWildcards(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		var rules []rbacv1.PolicyRule
		switch u.GetKind() {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			convert(t, u, &r)
			if r.AggregationRule != nil {
				t.Errorf("%s: aggregates other roles", objKey(u))
			}
			rules = r.Rules
		case "Role":
			var r rbacv1.Role
			convert(t, u, &r)
			rules = r.Rules
		default:
			continue
		}
		if len(rules) == 0 {
			t.Errorf("%s: no rules", objKey(u))
		}
		for i, r := range rules {
			for _, f := range [][]string{r.Verbs, r.Resources, r.APIGroups, r.NonResourceURLs} {
				if slices.Contains(f, "*") {
					t.Errorf("%s: rule %d grants a wildcard: %+v", objKey(u), i, r)
				}
			}
		}
	}
}

// TestCRDsListed fails when a CRD file in base/crds is missing from
// base/crds/kustomization.yml (controller-gen adds files; nothing else
// lists them), or when the list names a file that is gone.
func TestCRDsListed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		want = append(want, filepath.Base(f))
	}
	raw, err := os.ReadFile(filepath.Join(crdDir, "kustomization.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatalf("%s/kustomization.yml: %v", crdDir, err)
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("%s/kustomization.yml lists %v, the folder holds %v", crdDir, got, want)
	}
	var crds int
	for _, u := range build(t, crdDir) {
		if u.GetKind() == "CustomResourceDefinition" {
			crds++
		}
	}
	if crds != len(want) {
		t.Errorf("base/crds builds %d CRDs, want %d", crds, len(want))
	}
}

// TestHostOverlayServesKubelet: the host overlay turns the virtual nodes'
// kubelet endpoint on: --kubelet-client-ca names a file mounted from the
// cluster's root CA ConfigMap, and the tree's pod exposes port 10250.
func TestHostOverlayServesKubelet(t *testing.T) {
	for _, dir := range []string{"overlays/host", "overlays/example"} {
		var d appsv1.Deployment
		for _, u := range build(t, dir) {
			if objKey(u) == "Deployment/kosmos-system/kosmos-tree" {
				convert(t, u, &d)
			}
		}
		spec := d.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: kosmos-tree has %d containers", dir, len(spec.Containers))
		}
		c := spec.Containers[0]
		var ca string
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--kubelet-client-ca="); ok {
				ca = v
			}
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == "kube-root-ca.crt" && ca == m.MountPath+"/ca.crt" {
					mounted = true
				}
			}
		}
		port := slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == 10250 })
		if ca == "" || !mounted || !port {
			t.Errorf("%s: kubelet client CA %q mounted from kube-root-ca.crt %v, port 10250 %v", dir, ca, mounted, port)
		}
	}
}
