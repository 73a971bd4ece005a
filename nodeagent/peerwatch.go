package nodeagent

import (
	"context"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// peerCache holds the ClusterPeers objects Kosmos manages in this cluster,
// as last listed and watched (guarded by APISource.mu).
type peerCache struct {
	byName map[string]v1alpha1.ClusterPeers
	// synced: listed once; version counts the changes.
	synced  bool
	version uint64
}

func (c *peerCache) list() []v1alpha1.ClusterPeers {
	out := make([]v1alpha1.ClusterPeers, 0, len(c.byName))
	for _, name := range slices.Sorted(maps.Keys(c.byName)) {
		out = append(out, c.byName[name])
	}
	return out
}

// watchPeers keeps the ClusterPeers cache current until ctx ends, as an
// informer does: list, then watch from the list's version; on a closed or
// failed watch, list again. A cluster without the ClusterPeers CRD (a
// reconciler of the earlier release) has none: the cache is synced and
// empty, and the list is retried now and then.
func (s *APISource) watchPeers(ctx context.Context) {
	sel := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}
	for ctx.Err() == nil {
		var list v1alpha1.ClusterPeersList
		err := s.c.List(ctx, &list, sel)
		if err != nil {
			if meta.IsNoMatchError(err) {
				s.noPeerKind() // synced, and what it held stays
			} else {
				s.log.Error("list ClusterPeers", "node", s.node, "err", err)
			}
			sleep(ctx, 5*time.Second)
			continue
		}
		s.replacePeers(list.Items)
		w, err := s.c.Watch(ctx, &v1alpha1.ClusterPeersList{}, sel, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			s.log.Error("watch ClusterPeers", "node", s.node, "err", err)
			sleep(ctx, 2*time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*v1alpha1.ClusterPeers)
			if ev.Type == watch.Error {
				break
			}
			if ok {
				s.updatePeer(p, ev.Type == watch.Deleted)
			}
		}
		w.Stop()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// replacePeers sets the cache to a fresh list, signalling a pass when it
// changed anything (or is the first).
func (s *APISource) replacePeers(items []v1alpha1.ClusterPeers) {
	next := make(map[string]v1alpha1.ClusterPeers, len(items))
	for _, p := range items {
		next[p.Name] = p
	}
	s.mu.Lock()
	same := s.peers.synced && maps.EqualFunc(s.peers.byName, next, func(a, b v1alpha1.ClusterPeers) bool {
		return a.ResourceVersion == b.ResourceVersion
	})
	if !same {
		s.peers.byName, s.peers.synced = next, true
		s.peers.version++
	}
	s.mu.Unlock()
	if !same {
		s.signal()
	}
}

// noPeerKind marks the cache synced when the cluster has no ClusterPeers
// kind (a reconciler of the earlier release): nothing to wait for. What the
// cache held stays: a kind that vanishes for a moment withdraws no route.
func (s *APISource) noPeerKind() {
	s.mu.Lock()
	first := !s.peers.synced
	if first {
		s.peers.synced = true
		s.peers.version++
	}
	s.mu.Unlock()
	if first {
		s.signal()
	}
}

// updatePeer applies one watch event to the cache.
func (s *APISource) updatePeer(p *v1alpha1.ClusterPeers, deleted bool) {
	s.mu.Lock()
	if s.peers.byName == nil {
		s.peers.byName = map[string]v1alpha1.ClusterPeers{}
	}
	if deleted {
		delete(s.peers.byName, p.Name)
	} else {
		s.peers.byName[p.Name] = *p
	}
	s.peers.version++
	s.mu.Unlock()
	s.signal()
}
