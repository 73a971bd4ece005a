package netplan

import (
	"testing"
	"time"
)

// TestGatewayStaysWhileAlive: the facts the reconciler reads when a
// frozen API server of a Gateway cluster thaws (seen in the chaos suite:
// the node lifecycle controller marks every node Unknown in one sweep,
// and the kubelets post Ready again one by one, so the standby is Ready
// "since" the same second the gateway fell), and the cases around them.
// A gateway the agents still send through is never moved by the control
// plane for its kubelet's sake; it moves when the data plane moved (the
// agents' catch-up), when it is no candidate any more, or, with no agent
// reporting, when it went NotReady alone. An agent that has not yet read
// a new plan does not vote it back.
func TestGatewayStaysWhileAlive(t *testing.T) {
	now := time.Date(2026, 11, 29, 17, 36, 54, 0, time.UTC)
	thaw := now.Add(-time.Second).Truncate(time.Second) // the node lifecycle controller's sweep
	long := now.Add(-time.Hour)                         // when every node joined
	settled := now.Add(-time.Minute)                    // an agent's choice older than the hold

	type report struct{ active, planned string }
	type world struct {
		inForce    string            // the gateway the NodeConfigs name ("": not read)
		b1, b2     string            // "ready", "notready", "gone"
		b1At, b2At time.Time         // their Ready condition's last transition
		remote     map[string]report // by remote cluster: every node of it reports this
		own        *report           // member-b's own nodes (nil: no report)
		since      time.Time         // of every report
	}
	build := func(t *testing.T, w world) Facts {
		t.Helper()
		_, facts := loadCase(t, "testdata/mixed-global")
		var nodes []Node
		for _, n := range facts["member-b"].Nodes {
			state, at := "ready", long
			switch n.Name {
			case "b1":
				state, at = w.b1, w.b1At
			case "b2":
				state, at = w.b2, w.b2At
			}
			if state == "gone" {
				continue
			}
			n.Ready, n.ReadySince = state == "ready", at
			nodes = append(nodes, n)
		}
		set := func(n *Node, r report) {
			n.Gateways = map[string]string{"member-b": r.active}
			n.GatewaysSince = map[string]time.Time{"member-b": w.since}
			if r.planned != "" {
				n.GatewaysPlanned = map[string]string{"member-b": r.planned}
			}
		}
		if w.own != nil {
			for i := range nodes {
				set(&nodes[i], *w.own)
			}
		}
		facts["member-b"] = ClusterFacts{Nodes: nodes, Gateway: w.inForce}
		for cluster, r := range w.remote {
			cf := facts[cluster]
			for i := range cf.Nodes {
				set(&cf.Nodes[i], r)
			}
			facts[cluster] = cf
		}
		return facts
	}
	onB1 := report{"b1", "b1"}
	allOnB1 := map[string]report{"host": onB1, "member-a": onB1}
	for _, c := range []struct {
		name string
		w    world
		want string
	}{
		{"thaw: b1 and b2 swept NotReady, b2 back first in the same second, every agent on b1",
			world{inForce: "b1", b1: "notready", b1At: thaw, b2: "ready", b2At: thaw, remote: allOnB1, own: &onB1, since: settled}, "b1"},
		{"thaw, partial facts: the NodeConfigs not read (no gateway in force), remote agents on b1",
			world{inForce: "", b1: "notready", b1At: thaw, b2: "ready", b2At: thaw, remote: allOnB1, since: settled}, "b1"},
		{"thaw, member-b's own reports absent, remote agents on b1",
			world{inForce: "b1", b1: "notready", b1At: thaw, b2: "ready", b2At: thaw, remote: allOnB1, since: settled}, "b1"},
		{"thaw, only member-b's own agents report (remote agents of an earlier release report nothing)",
			world{inForce: "b1", b1: "notready", b1At: thaw, b2: "ready", b2At: thaw, own: &onB1, since: settled}, "b1"},
		{"b1's kubelet dead, its tunnel answers: every agent still on b1",
			world{inForce: "b1", b1: "notready", b1At: thaw, b2: "ready", b2At: long, remote: allOnB1, own: &onB1, since: settled}, "b1"},
		{"b1's machine dead: every remote agent moved to b2",
			world{inForce: "b1", b1: "notready", b1At: thaw, b2: "ready", b2At: long, remote: map[string]report{"host": {"b2", "b1"}, "member-a": {"b2", "b1"}}, since: settled}, "b2"},
		{"b1's tunnels broken, its kubelet fine: the remote agents moved to b2",
			world{inForce: "b1", b1: "ready", b1At: long, b2: "ready", b2At: long, remote: map[string]report{"host": {"b2", "b1"}, "member-a": {"b2", "b1"}}, own: &onB1, since: settled}, "b2"},
		{"no agent reports: b1 NotReady alone, b2 Ready before it fell",
			world{inForce: "b1", b1: "notready", b1At: thaw, b2: "ready", b2At: long}, "b2"},
		{"no agent reports: b2 Ready again in the same second b1 fell (the sweep)",
			world{inForce: "b1", b1: "notready", b1At: thaw, b2: "ready", b2At: thaw}, "b1"},
		{"b1 deleted: agents still report it",
			world{inForce: "b1", b1: "gone", b2: "ready", b2At: long, remote: allOnB1, own: &onB1, since: settled}, "b2"},
		{"the plan moved to b2 (member-a's agents did), host's agents have not read it yet",
			world{inForce: "b2", b1: "ready", b1At: long, b2: "ready", b2At: long, remote: map[string]report{"host": onB1, "member-a": {"b2", "b1"}}, since: settled}, "b2"},
		{"the plan moved to b2, every agent still on b1 it planned (none read the plan yet)",
			world{inForce: "b2", b1: "notready", b1At: thaw, b2: "ready", b2At: long, remote: allOnB1, own: &onB1, since: settled}, "b2"},
		{"the plan moved to b2, host's agents read it and cannot reach b2: they stay on b1",
			world{inForce: "b2", b1: "ready", b1At: long, b2: "ready", b2At: long, remote: map[string]report{"host": {"b1", "b2"}, "member-a": {"b2", "b2"}}, since: settled}, "b1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, _ := loadCase(t, "testdata/mixed-global")
			got := ComputeAt(spec, build(t, c.w), now).Cluster("member-b")
			if got.Gateway != c.want {
				t.Errorf("gateway %s (standby %v), want %s", got.Gateway, got.Standby, c.want)
			}
		})
	}
}
