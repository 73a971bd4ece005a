// Package inventory records, per cluster, the objects Kosmos applied, so that
// prune is the difference between the last inventory and the new plan
// instead of a sweep over a list of kinds.
//
// # The record
//
// An Inventory holds one Record per cluster Kosmos has written to: the
// cluster's role and how it is reached (the topology's kubeconfig
// reference: a context name or a Secret reference, never a credential),
// and every object applied there with the UID it had when the write
// succeeded. The reference outlives the topology: a cluster removed from
// the topology is still reached for one last prune, then forgotten.
//
// Namespaces are applied but never recorded: Kosmos shares kosmos-system
// with its own workloads and never deletes a namespace.
//
// # Where it is kept
//
// In the host cluster, as the ConfigMap kosmos-system/kosmos-inventory-<topology>
// (Store), one data key per cluster. The same place serves the file source
// and the KosmosTopology object, survives restarts of the reconciler and
// is read by `kosmos diff`. The ConfigMap carries
// app.kubernetes.io/managed-by=kosmos and kosmos.io/inventory=<topology>,
// not the kosmos.io/topology label, so nothing that sweeps owned objects by
// label ever takes it for a desired object.
//
// # Pure core
//
// Stale (what prune deletes), Merge (carrying records a failed save could
// not persist) and Check (the deletion guard) are pure functions over plain
// data; Store is the thin layer that reads and writes the ConfigMap.
package inventory

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Entry is one object Kosmos applied in a cluster.
type Entry struct {
	APIVersion, Kind, Namespace, Name string
	// UID the object had when it was applied; deletes carry it as a
	// precondition, so an object someone recreated is never deleted.
	UID string
}

// Key names the object as apply and diff do: Kind/name, or
// Kind/namespace/name.
func (e Entry) Key() string {
	if e.Namespace != "" {
		return e.Kind + "/" + e.Namespace + "/" + e.Name
	}
	return e.Kind + "/" + e.Name
}

// String is the entry's line in the stored record:
// "apiVersion Kind namespace/name uid" ("apiVersion Kind name uid" for a
// cluster-scoped object).
func (e Entry) String() string {
	n := e.Name
	if e.Namespace != "" {
		n = e.Namespace + "/" + e.Name
	}
	return strings.Join([]string{e.APIVersion, e.Kind, n, e.UID}, " ")
}

// ParseEntry reads a line written by Entry.String.
func ParseEntry(line string) (Entry, error) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return Entry{}, fmt.Errorf("inventory entry %q: want \"apiVersion Kind [namespace/]name uid\"", line)
	}
	e := Entry{APIVersion: f[0], Kind: f[1], Name: f[2], UID: f[3]}
	if ns, name, ok := strings.Cut(f[2], "/"); ok {
		e.Namespace, e.Name = ns, name
	}
	if e.Name == "" {
		return Entry{}, fmt.Errorf("inventory entry %q: no name", line)
	}
	return e, nil
}

// Record is what Kosmos applied in one cluster.
type Record struct {
	// Role of the cluster when it was last applied (the host is reached with
	// the controller's own credentials when it has no secretRef).
	Role v1alpha1.ClusterRole `json:"role"`
	// Kubeconfig is how the cluster is reached: a reference, never a
	// credential.
	Kubeconfig v1alpha1.KubeconfigRef `json:"kubeconfig"`
	// Objects applied there, sorted by key.
	Objects []Entry `json:"-"`
}

// Inventory is the record of every cluster Kosmos has written to, by name.
type Inventory map[string]*Record

// Total counts the objects of every record.
func (inv Inventory) Total() int {
	n := 0
	for _, r := range inv {
		n += len(r.Objects)
	}
	return n
}

// Clone copies the inventory (records and their object lists).
func (inv Inventory) Clone() Inventory {
	out := make(Inventory, len(inv))
	for name, r := range inv {
		c := *r
		c.Objects = slices.Clone(r.Objects)
		out[name] = &c
	}
	return out
}

// Stale lists the entries of old that want (keys of the plan) no longer
// holds: what prune deletes, in key order.
func Stale(old []Entry, want map[string]bool) []Entry {
	var out []Entry
	for _, e := range old {
		if !want[e.Key()] {
			out = append(out, e)
		}
	}
	SortEntries(out)
	return out
}

// Merge adds to a the entries of b, cluster by cluster: what an earlier
// pass applied but could not save is carried until a save succeeds. b is
// the newer: on the same key its entry (its UID) wins. Pruning an entry
// twice is harmless (deletes carry the UID); forgetting one would leak the
// object.
func Merge(a, b Inventory) Inventory {
	out := a.Clone()
	for name, rb := range b {
		ra, ok := out[name]
		if !ok {
			c := *rb
			c.Objects = slices.Clone(rb.Objects)
			out[name] = &c
			continue
		}
		newer := map[string]bool{}
		for _, e := range rb.Objects {
			newer[e.Key()] = true
		}
		ra.Objects = slices.DeleteFunc(ra.Objects, func(e Entry) bool { return newer[e.Key()] })
		ra.Objects = append(ra.Objects, rb.Objects...)
		SortEntries(ra.Objects)
	}
	return out
}

// SortEntries orders entries by key.
func SortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.Key(), b.Key()) })
}

// Deletion is one object a pass would delete.
type Deletion struct {
	Cluster string
	Entry   Entry
}

// DefaultGuardPercent is the share of what Kosmos owns that one pass may
// delete without confirmation.
const DefaultGuardPercent = 50

// Guard is the verdict of the deletion guard on one pass.
type Guard struct {
	// Deletions the pass would make, and Total objects Kosmos owns.
	Deletions, Total int
	// Percent is the threshold in force.
	Percent int
	// Token confirms exactly this set of deletions (a hash of it): a
	// confirmation left in place never approves a different wipe.
	Token string
	// Tripped says the pass deletes more than Percent of Total and Token
	// was not confirmed: it must write nothing.
	Tripped bool
}

// Message explains a tripped guard and how to confirm.
func (g Guard) Message() string {
	return fmt.Sprintf("deletion guard: this pass would delete %d of the %d objects Kosmos owns (more than %d%%); nothing was written. "+
		"If this is meant, confirm it: annotate the topology %s: %q, or run kosmos apply --confirm-deletions %s",
		g.Deletions, g.Total, g.Percent, v1alpha1.AnnotationConfirmDeletions, g.Token, g.Token)
}

// Check judges a pass that would make dels out of total owned objects.
// percent (1-100; 100 turns the guard off) is the share that needs no
// confirmation; confirmed is the token the user gave, if any. A pass that
// deletes everything of a non-empty inventory always counts as large.
func Check(dels []Deletion, total, percent int, confirmed string) Guard {
	if percent <= 0 {
		percent = DefaultGuardPercent
	}
	g := Guard{Deletions: len(dels), Total: total, Percent: percent}
	if len(dels) == 0 {
		return g
	}
	lines := make([]string, 0, len(dels))
	for _, d := range dels {
		lines = append(lines, d.Cluster+" "+d.Entry.String())
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	g.Token = hex.EncodeToString(sum[:5])
	large := len(dels)*100 > total*percent && percent < 100
	g.Tripped = large && confirmed != g.Token
	return g
}

// Clusters lists the names of the records, sorted.
func (inv Inventory) Clusters() []string { return slices.Sorted(maps.Keys(inv)) }
