package kustomize_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/nodeagent"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/tree"
)

// buildWithMonitoring builds an overlay with components/monitoring on top,
// as a user's kustomization would.
func buildWithMonitoring(t *testing.T, overlay string) []*unstructured.Unstructured {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf("resources: [%s]\ncomponents: [%s]\n", filepath.Join(rel, overlay), filepath.Join(rel, "components/monitoring"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return build(t, dir)
}

// TestMonitoringComponent builds the host and member overlays with the
// monitoring component: every PodMonitor selects a workload the host
// overlay runs and scrapes a port it names; the dashboard is a ConfigMap
// Grafana's sidecar loads; the rules pass promtool check rules and the
// unit tests of testdata/monitoring-rules.test.yaml; and every metric the
// rules and the dashboard use is one a component serves.
func TestMonitoringComponent(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool missing: make test installs it (hack/deps.sh, Debian's prometheus package)")
	}
	buildWithMonitoring(t, "overlays/member")
	objs := buildWithMonitoring(t, "overlays/host")
	var exprs []string
	podMonitors := 0
	for _, u := range objs {
		switch u.GetKind() {
		case "PodMonitor":
			podMonitors++
			checkPodMonitor(t, u, workloads(t, objs))
		case "PrometheusRule":
			exprs = append(exprs, checkRules(t, promtool, u)...)
		case "ConfigMap":
			if u.GetName() == "kosmos-dashboard" {
				exprs = append(exprs, dashboardExprs(t, u)...)
			}
		}
	}
	if podMonitors != 4 || len(exprs) < 10 {
		t.Fatalf("%d PodMonitors (want 4: reconciler, agent, tree, dns), %d expressions in rules and dashboard", podMonitors, len(exprs))
	}
	served := servedMetrics(t)
	for _, e := range exprs {
		for _, name := range metricNames(e) {
			if !served[name] {
				t.Errorf("metric %s (in %q) is served by no component", name, e)
			}
		}
	}
}

// checkPodMonitor: the selector matches a workload's pod labels, in the
// PodMonitor's namespace, and every endpoint names a port of its container.
func checkPodMonitor(t *testing.T, u *unstructured.Unstructured, ws map[string]corev1.PodTemplateSpec) {
	t.Helper()
	sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
	eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "podMetricsEndpoints")
	matched := false
	for key, tmpl := range ws {
		if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(tmpl.Labels)) || !strings.Contains(key, "/"+u.GetNamespace()+"/") {
			continue
		}
		matched = true
		for _, ep := range eps {
			port := ep.(map[string]any)["port"]
			found := false
			for _, c := range tmpl.Spec.Containers {
				found = found || slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == port })
			}
			if !found {
				t.Errorf("PodMonitor %s: %s has no container port %v", u.GetName(), key, port)
			}
		}
	}
	if !matched {
		t.Errorf("PodMonitor %s: selector %v matches no workload of the host overlay", u.GetName(), sel)
	}
}

// checkRules runs promtool on the rule groups of a PrometheusRule (check,
// then the unit tests) and returns every rule's expression.
func checkRules(t *testing.T, promtool string, u *unstructured.Unstructured) []string {
	t.Helper()
	groups, _, _ := unstructured.NestedSlice(u.Object, "spec", "groups")
	data, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests, err := os.ReadFile("testdata/monitoring-rules.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"rules.yaml": data, "rules.test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules.test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var exprs []string
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			exprs = append(exprs, r.(map[string]any)["expr"].(string))
		}
	}
	return exprs
}

// dashboardExprs checks the dashboard ConfigMap (the label Grafana's
// sidecar looks for, valid JSON) and returns every query in it.
func dashboardExprs(t *testing.T, u *unstructured.Unstructured) []string {
	t.Helper()
	if u.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("ConfigMap %s: no grafana_dashboard label", u.GetName())
	}
	raw, _, _ := unstructured.NestedString(u.Object, "data", "kosmos.json")
	var d any
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if e, ok := x["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(d)
	return exprs
}

// recorder keeps the collectors a component registers.
type recorder struct {
	prometheus.Registerer
	got []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.got = append(r.got, c)
	return r.Registerer.Register(c)
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// servedMetrics names every metric family the components' /metrics serve:
// each component's registration function (the one its command hands to
// internal/component, which serves the registry on /metrics) runs against
// a fresh registry, and the descriptors of what it registered give the
// names. Descriptors, not a scrape: a labelled metric is not in a scrape
// until its first use, and the test must know every name. Histograms serve
// _bucket, _sum and _count series.
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	registrations := map[string]func(prometheus.Registerer) error{
		"reconciler": reconciler.RegisterMetrics,
		"agent":      nodeagent.RegisterMetrics,
		"tree":       (&tree.Controller{}).Register,
	}
	out := map[string]bool{}
	for name, register := range registrations {
		r := &recorder{Registerer: prometheus.NewRegistry()}
		if err := register(r); err != nil {
			t.Fatalf("%s metrics: %v", name, err)
		}
		for _, c := range r.got {
			ch := make(chan *prometheus.Desc, 16)
			go func() { c.Describe(ch); close(ch) }()
			for d := range ch {
				m := fqName.FindStringSubmatch(d.String())
				if m == nil {
					t.Fatalf("%s: no name in descriptor %s", name, d)
				}
				out[m[1]] = true
				switch c.(type) {
				case prometheus.Histogram, *prometheus.HistogramVec:
					out[m[1]+"_bucket"], out[m[1]+"_sum"], out[m[1]+"_count"] = true, true, true
				}
			}
		}
	}
	return out
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promNumbers  = regexp.MustCompile(`\b[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?[a-z]*\b`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	promKeywords = map[string]bool{"group_left": true, "group_right": true, "and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames lists the metric names a PromQL expression selects: what is
// left of it once strings, label matchers, ranges, grouping clauses and
// numbers are gone, minus function and aggregation calls and keywords.
// (The PromQL parser lives in the Prometheus server module, too heavy a
// dependency for this; TestMetricNames pins what this reads.)
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, " ")
	e = promMatchers.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	e = promNumbers.ReplaceAllString(e, " ")
	var out []string
	for _, m := range promIdent.FindAllStringSubmatch(e, -1) {
		if m[1] == "" && !promKeywords[strings.ToLower(m[0])] {
			out = append(out, m[0])
		}
	}
	return out
}

// TestMetricNames pins what metricNames reads out of PromQL.
func TestMetricNames(t *testing.T) {
	cases := map[string][]string{
		`increase(kosmos_topology_rejected_total[15m]) > 0`:                            {"kosmos_topology_rejected_total"},
		`sum by (cluster, le) (rate(a_bucket{x="y", le=~"1|2"}[$__rate_interval]))`:    {"a_bucket"},
		`histogram_quantile(0.99, sum(rate(h_bucket[5m])) by (le)) > 1e3`:              {"h_bucket"},
		`up == 0 or on (pod) absent(kosmos_x offset 5m) unless bool b`:                 {"up", "kosmos_x", "b"},
		`label_replace(m1, "dst", "$1", "src", "(.*)") / ignoring(code) group_left m2`: {"m1", "m2"},
		`kosmos_tree_member_reachable`:                                                 {"kosmos_tree_member_reachable"},
	}
	for expr, want := range cases {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}
