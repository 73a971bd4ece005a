package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// MaxBytes bounds the stored inventory: a ConfigMap holds at most 1 MiB.
const MaxBytes = 900 << 10

// Store keeps a topology's inventory in the host cluster.
type Store struct {
	// Client of the host cluster.
	Client client.Client
	// Topology names the topology.
	Topology string
}

func (s Store) key() client.ObjectKey {
	return client.ObjectKey{Namespace: v1alpha1.SystemNamespace, Name: v1alpha1.InventoryPrefix + s.Topology}
}

// storedRecord is a Record as kept in one data key of the ConfigMap.
type storedRecord struct {
	Role       v1alpha1.ClusterRole   `json:"role"`
	Kubeconfig v1alpha1.KubeconfigRef `json:"kubeconfig"`
	Objects    []string               `json:"objects"`
}

// Encode renders an inventory as ConfigMap data: one key per cluster, each
// a JSON record whose objects are Entry lines. It is pure.
func Encode(inv Inventory) (map[string]string, error) {
	out := make(map[string]string, len(inv))
	size := 0
	for _, name := range inv.Clusters() {
		r := inv[name]
		sr := storedRecord{Role: r.Role, Kubeconfig: r.Kubeconfig, Objects: make([]string, 0, len(r.Objects))}
		for _, e := range r.Objects {
			sr.Objects = append(sr.Objects, e.String())
		}
		b, err := json.MarshalIndent(sr, "", " ")
		if err != nil {
			return nil, err
		}
		out[name] = string(b)
		size += len(b)
	}
	if size > MaxBytes {
		return nil, fmt.Errorf("inventory of %d objects is %d bytes, over the %d a ConfigMap can hold", inv.Total(), size, MaxBytes)
	}
	return out, nil
}

// Decode reads ConfigMap data written by Encode. It is pure.
func Decode(data map[string]string) (Inventory, error) {
	inv := Inventory{}
	for _, name := range slices.Sorted(maps.Keys(data)) {
		var sr storedRecord
		dec := json.NewDecoder(strings.NewReader(data[name]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sr); err != nil {
			return nil, fmt.Errorf("inventory record of cluster %s: %w", name, err)
		}
		r := &Record{Role: sr.Role, Kubeconfig: sr.Kubeconfig}
		for _, l := range sr.Objects {
			e, err := ParseEntry(l)
			if err != nil {
				return nil, fmt.Errorf("inventory record of cluster %s: %w", name, err)
			}
			r.Objects = append(r.Objects, e)
		}
		SortEntries(r.Objects)
		inv[name] = r
	}
	return inv, nil
}

// Load reads the inventory; an absent one is empty (found false).
func (s Store) Load(ctx context.Context) (inv Inventory, found bool, err error) {
	var cm corev1.ConfigMap
	if err := s.Client.Get(ctx, s.key(), &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return Inventory{}, false, nil
		}
		return nil, false, fmt.Errorf("read inventory %s/%s: %w", s.key().Namespace, s.key().Name, err)
	}
	inv, err = Decode(cm.Data)
	if err != nil {
		return nil, true, fmt.Errorf("inventory %s/%s: %w", s.key().Namespace, s.key().Name, err)
	}
	return inv, true, nil
}

// Save writes the inventory when it differs from what is stored (prev, as
// loaded): an unchanged inventory costs no write. The namespace is created
// when missing.
func (s Store) Save(ctx context.Context, inv, prev Inventory) (wrote bool, err error) {
	data, err := Encode(inv)
	if err != nil {
		return false, err
	}
	if prev != nil {
		if old, err := Encode(prev); err == nil && maps.Equal(old, data) {
			return false, nil
		}
	}
	if err := WriteRecord(ctx, s.Client, s.key(), s.Topology, data); err != nil {
		return false, err
	}
	return true, nil
}

// WriteRecord server-side applies one of Kosmos's records in the host (the
// inventory, the last good facts): a ConfigMap marked managed-by kosmos and
// kosmos.io/inventory=<topology> (never kosmos.io/topology, so nothing
// takes it for a desired object), creating kosmos-system when missing.
func WriteRecord(ctx context.Context, c client.Client, key client.ObjectKey, topology string, data map[string]string) error {
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelInventory: topology}},
		Data: data,
	}
	err := c.Patch(ctx, cm, client.Apply, client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership)
	if apierrors.IsNotFound(err) { // no kosmos-system yet
		ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: key.Namespace}}
		if err := c.Patch(ctx, ns, client.Apply, client.FieldOwner(v1alpha1.FieldManager)); err != nil {
			return fmt.Errorf("write %s: namespace %s: %w", key, key.Namespace, err)
		}
		err = c.Patch(ctx, cm, client.Apply, client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// Delete removes the stored inventory (after everything it recorded is
// gone).
func (s Store) Delete(ctx context.Context) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.key().Namespace, Name: s.key().Name}}
	if err := s.Client.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete inventory %s/%s: %w", s.key().Namespace, s.key().Name, err)
	}
	return nil
}
