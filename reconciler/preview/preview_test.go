package preview

import (
	"os"
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/golden"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// example is topology.example.yaml as text, for edits.
func example(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../topology.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// load parses a topology, failing the test when it is invalid.
func load(t *testing.T, name, text string) *v1alpha1.KosmosTopology {
	t.Helper()
	topo, err := schema.Load(name, []byte(text))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return topo
}

// edit replaces old by new in text once, failing when old is not there.
func edit(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("edit: %q not in the topology", old)
	}
	return strings.Replace(text, old, new, 1)
}

// memberD is a cluster the example does not hold (its node is in the facts).
const memberD = `
    - name: member-d
      role: member
      kubeconfig: { context: member-d }
      region: ap-south
      network:
        podCIDRs: [10.50.0.0/16]
        serviceCIDRs: [10.51.0.0/16]
`

// scenarios are the changes previewed, each a golden Markdown file.
func scenarios(t *testing.T) map[string]string {
	ex := example(t)
	policies := edit(t, ex, "- { name: member-a, weight: 2 }", "- { name: member-a, weight: 3 }")
	policies = strings.Split(policies, "    # Two API replicas pinned")[0] + "\n  services:\n    - {namespace: shop, name: web}\n"
	return map[string]string{
		// The example against itself: nothing changes.
		"unchanged": ex,
		// A weight changes, a policy and a service go.
		"policy": policies,
		// member-b's gateway selector now names a rack only member-b-n1 is
		// in: the gateway moves, and every route to member-b follows it.
		"gateway-move": edit(t, ex, "kosmos.io/gateway: \"true\"\n", "example.com/rack: r1\n"),
		// member-d joins; member-a turns to Gateway mode.
		"cluster-added": edit(t, edit(t, ex, "\n  distributionPolicies:", memberD+"\n  distributionPolicies:"), "        mode: P2P\n        podCIDRs: [10.244.0.0/16]", "        mode: Gateway\n        podCIDRs: [10.244.0.0/16]"),
		// Only the host and member-a stay: two clusters leave, the guard trips.
		"clusters-leave": strings.Split(ex, "    - name: member-b\n")[0] + "\n  services:\n    - {namespace: shop, name: web}\n",
	}
}

func facts(t *testing.T) plan.Facts {
	t.Helper()
	raw, err := os.ReadFile("testdata/facts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := plan.LoadFacts(raw)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMarkdown renders the preview of each scenario against the example,
// offline over the same facts, and compares it with its golden file; the
// Mermaid block of each stays inside the checked subset.
func TestMarkdown(t *testing.T) {
	old := load(t, "example", example(t))
	for name, text := range scenarios(t) {
		t.Run(name, func(t *testing.T) {
			topo := load(t, name, text)
			rep, err := reconciler.OfflineDiff(old, topo, facts(t), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), inventory.DefaultGuardPercent)
			if err != nil {
				t.Fatal(err)
			}
			md := Markdown(Input{Old: old, New: topo, Report: rep, Offline: true})
			golden.Assert(t, "testdata/"+name+".md", []byte(md))
			block := strings.SplitN(strings.SplitN(md, "```mermaid\n", 2)[1], "```", 2)[0]
			if err := checkMermaid(block); err != nil {
				t.Errorf("mermaid block: %v\n%s", err, block)
			}
		})
	}
}

// TestGraphExample draws topology.example.yaml alone (as `kosmos graph`
// does: no facts, so no gateway is named) in both languages.
func TestGraphExample(t *testing.T) {
	g := GraphOf(load(t, "example", example(t)), nil)
	golden.Assert(t, "testdata/example.mmd", []byte(g.Mermaid()))
	golden.Assert(t, "testdata/example.dot", []byte(g.DOT()))
	if err := checkMermaid(g.Mermaid()); err != nil {
		t.Error(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```mermaid\n"+g.Mermaid()+"```\n") {
		t.Error("README.md does not show the example's graph as kosmos graph draws it")
	}
}

// TestMarkdownLive: a live diff has no old topology. Clusters joining and
// network setting changes are then not named (the live objects are the
// "before"), the rest still is, and a tripped guard shows the token that
// confirms the deletions (offline, the token is not apply's: it is left out).
func TestMarkdownLive(t *testing.T) {
	old := load(t, "example", example(t))
	topo := load(t, "clusters-leave", scenarios(t)["clusters-leave"])
	rep, err := reconciler.OfflineDiff(old, topo, facts(t), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), inventory.DefaultGuardPercent)
	if err != nil {
		t.Fatal(err)
	}
	live := Markdown(Input{New: topo, Report: rep})
	offline := Markdown(Input{Old: old, New: topo, Report: rep, Offline: true})
	token := rep.Guard.Token
	if token == "" || !strings.Contains(live, "`kosmos apply --confirm-deletions "+token+"`") || strings.Contains(offline, token) {
		t.Errorf("guard token %q: live shows it, offline must not:\n%s", token, live)
	}
	for _, want := range []string{"(live: the clusters as they are, against the plan)", "**cluster member-b leaves**", "**gateway** of member-b", "**routes** host → member-b: 0 added, 2 removed"} {
		if !strings.Contains(live, want) {
			t.Errorf("live preview lacks %q:\n%s", want, live)
		}
	}
	gw := load(t, "gateway-move", scenarios(t)["gateway-move"])
	added := load(t, "cluster-added", scenarios(t)["cluster-added"])
	rep, err = reconciler.OfflineDiff(gw, added, facts(t), time.Now(), inventory.DefaultGuardPercent)
	if err != nil {
		t.Fatal(err)
	}
	if md := Markdown(Input{New: added, Report: rep}); strings.Contains(md, "joins") || strings.Contains(md, "network mode") {
		t.Errorf("live preview names what only an old topology tells:\n%s", md)
	}
}
