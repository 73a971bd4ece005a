package peering

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// shard is shard i of n of cluster c, at generation gen, created at second
// created; its one endpoint is named after it.
func shard(c string, i, n int32, gen int64, created int64) v1alpha1.ClusterPeers {
	name := fmt.Sprintf("%s.%d-of-%d", c, i, n)
	last := byte(10*n + i)
	p := peers(name, c, v1alpha1.ModeP2P, nil, ep(fmt.Sprintf("%s-%d-%d", c, n, i), fmt.Sprintf("192.168.%d.%d", n, i+1),
		fmt.Sprintf("220.168.%d.%d", n, i+1), fmt.Sprintf("02:00:00:00:00:%02x", last), fmt.Sprintf("10.%d.%d.0/24", n, i)))
	p.Spec.Shard, p.Spec.Shards, p.Generation = i, n, gen
	p.CreationTimestamp = metav1.NewTime(time.Unix(created, 0))
	return p
}

// names lists name@generation.
func names(ps []v1alpha1.ClusterPeers) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s@%d", p.Name, p.Generation))
	}
	return strings.Join(out, " ")
}

func TestSettle(t *testing.T) {
	a01, a02, a12 := shard("a", 0, 1, 1, 100), shard("a", 0, 2, 1, 200), shard("a", 1, 2, 1, 200)
	a02v2 := shard("a", 0, 2, 2, 200)
	b01 := shard("b", 0, 1, 1, 100)
	bad := shard("a", 3, 2, 1, 200) // index outside 0..1
	for _, c := range []struct {
		name          string
		prev, current []v1alpha1.ClusterPeers
		use, held     string
	}{
		{"one complete set", nil, []v1alpha1.ClusterPeers{a02, a12, b01}, "a.0-of-2@1 a.1-of-2@1 b.0-of-1@1", ""},
		{"a shard late, held: the one there at its current version, the late one as before",
			[]v1alpha1.ClusterPeers{a02, a12, b01}, []v1alpha1.ClusterPeers{a02v2, b01}, "a.0-of-2@2 a.1-of-2@1 b.0-of-1@1", "a"},
		{"a shard late, nothing before: what there is (a joining cluster)", nil, []v1alpha1.ClusterPeers{a12}, "a.1-of-2@1", ""},
		{"split under way: the new set incomplete, the old one used",
			[]v1alpha1.ClusterPeers{a01}, []v1alpha1.ClusterPeers{a01, a02}, "a.0-of-1@1", ""},
		{"split written: both complete, the new one used",
			[]v1alpha1.ClusterPeers{a01}, []v1alpha1.ClusterPeers{a01, a02, a12}, "a.0-of-2@1 a.1-of-2@1", ""},
		{"merge written: both complete, the new (smaller) one used",
			[]v1alpha1.ClusterPeers{a02, a12}, []v1alpha1.ClusterPeers{a01, a02, a12}, "a.0-of-1@1", ""},
		{"both complete, nothing before: the newest", nil, []v1alpha1.ClusterPeers{a01, a02, a12}, "a.0-of-2@1 a.1-of-2@1", ""},
		{"both complete, same age, nothing before: more shards", nil,
			[]v1alpha1.ClusterPeers{shard("a", 0, 1, 1, 200), a02, a12}, "a.0-of-2@1 a.1-of-2@1", ""},
		{"old set being deleted: the complete new one", []v1alpha1.ClusterPeers{a02, a12}, []v1alpha1.ClusterPeers{a01, a12}, "a.0-of-1@1", ""},
		{"a cluster gone entirely has left: not held", []v1alpha1.ClusterPeers{a02, a12, b01}, []v1alpha1.ClusterPeers{b01}, "b.0-of-1@1", ""},
		{"an index out of range completes nothing", []v1alpha1.ClusterPeers{a02, a12}, []v1alpha1.ClusterPeers{a02, bad}, "a.0-of-2@1 a.1-of-2@1", "a"},
		{"nothing", nil, nil, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			prevCopy := slices.Clone(c.prev)
			use, held := Settle(c.prev, c.current)
			if got := names(use); got != c.use {
				t.Errorf("use:\n got %q\nwant %q", got, c.use)
			}
			if got := strings.Join(held, " "); got != c.held {
				t.Errorf("held: got %q, want %q", got, c.held)
			}
			if names(prevCopy) != names(c.prev) {
				t.Error("prev was modified")
			}
		})
	}
}

// TestLateShardKeepsRoutes derives through Settle: a shard that is late
// withdraws none of its endpoints' routes.
func TestLateShardKeepsRoutes(t *testing.T) {
	edge := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Topology: "t", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}}
	full := []v1alpha1.ClusterPeers{shard("a", 0, 2, 1, 1), shard("a", 1, 2, 1, 1)}
	before, err := Derive(edge, full)
	if err != nil {
		t.Fatal(err)
	}
	used, _ := Settle(nil, Select(edge, full))
	late, held := Settle(used, Select(edge, full[:1]))
	after, err := Derive(edge, late)
	if err != nil {
		t.Fatal(err)
	}
	if text(after) != text(before) || len(held) != 1 {
		t.Errorf("a late shard changed the derivation (held %v):\nbefore\n%s\nafter\n%s", held, text(before), text(after))
	}
	if !strings.Contains(text(after), "route vx-bridge 10.2.1.0/24 via 220.168.2.2") {
		t.Errorf("the late shard's route is missing:\n%s", text(after))
	}
}
