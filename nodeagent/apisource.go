package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// APISource follows the NodeConfig named after this node in the API server,
// and the ClusterPeers objects its entries are derived from, and writes the
// NodeConfig's status back. It reads nothing else: RBAC can restrict the
// agent to get/watch NodeConfigs, list/watch ClusterPeers and update
// NodeConfig status.
type APISource struct {
	c    client.WithWatch
	node string
	log  *slog.Logger

	mu      sync.Mutex
	current *v1alpha1.NodeConfig // nil: not found (yet)
	read    bool                 // the NodeConfig was read (or found missing) once
	err     error
	events  chan struct{}
	peers   peerCache
	// composed is the last composition of current with the peers, reused
	// while neither changed (Run and Report compare spec pointers).
	composed    Composed
	composedErr error
	composedOf  *v1alpha1.NodeConfig
	composedVer uint64
	// lastUsed are the ClusterPeers the last good composition used: a
	// shard set that is incomplete is held at them (ComposeAfter).
	lastUsed []v1alpha1.ClusterPeers

	// WireGuardStatus, when set, gives the node's WireGuard identity for
	// status.wireGuard (its public key is how peers learn it).
	WireGuardStatus func() *v1alpha1.WireGuardStatus
	// Transit, when set, records each composition's transit routing (a
	// gateway candidate's; see transit.go) for its Settle after the pass.
	Transit *TransitRouting

	// ha, when set, probes the gateway candidates; the composition follows
	// its choice (composedHA: the choice's version).
	ha         *HA
	composedHA uint64
}

// UseHA makes the source follow the gateway choice of h (gateway HA) and
// report it in status; call it before Watch.
func (s *APISource) UseHA(h *HA) { s.ha = h }

// NewAPISource connects to the API server.
func NewAPISource(cfg *rest.Config, node string, log *slog.Logger) (*APISource, error) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &APISource{c: c, node: node, log: log, events: make(chan struct{}, 1)}, nil
}

// Events signals every change of the NodeConfig.
func (s *APISource) Events() <-chan struct{} { return s.events }

func (s *APISource) signal() {
	select {
	case s.events <- struct{}{}:
	default:
	}
}

// Watch keeps the cached NodeConfig and ClusterPeers current until ctx
// ends: get (list), then watch from that version; on a closed or failed
// watch, get again.
func (s *APISource) Watch(ctx context.Context) {
	go s.watchPeers(ctx)
	for ctx.Err() == nil {
		rv := s.refresh(ctx)
		if s.readFailed() {
			// No watch from a version never read: a NodeConfig deleted
			// meanwhile would send no event, and Spec would go on with
			// the one read last. Read again first.
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			continue
		}
		w, err := s.c.Watch(ctx, &v1alpha1.NodeConfigList{}, client.MatchingFields{"metadata.name": s.node}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
		if err != nil {
			s.log.Error("watch NodeConfig", "node", s.node, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			continue
		}
		for ev := range w.ResultChan() {
			if nc, ok := ev.Object.(*v1alpha1.NodeConfig); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				s.set(nc, nil)
			} else if ev.Type == watch.Deleted {
				s.set(nil, nil)
			} else if ev.Type == watch.Error {
				break
			}
		}
		w.Stop()
	}
}

// refresh reads the NodeConfig once and returns the version to watch from.
func (s *APISource) refresh(ctx context.Context) string {
	var nc v1alpha1.NodeConfig
	err := s.c.Get(ctx, client.ObjectKey{Name: s.node}, &nc)
	switch {
	case apierrors.IsNotFound(err):
		s.set(nil, nil)
		var list v1alpha1.NodeConfigList
		if err := s.c.List(ctx, &list, client.MatchingFields{"metadata.name": s.node}); err == nil {
			return list.ResourceVersion
		}
		return ""
	case err != nil:
		// The API server cannot be read: the agent goes on with the
		// NodeConfig it read last (Spec composes it with the gateway
		// choice of now), so a failover still reaches the kernel while
		// the control plane is away (static stability).
		s.log.Warn("NodeConfig unreadable; going on with the one read last", "node", s.node, "err", err)
		s.set(s.currentObject(), err)
		return ""
	}
	s.set(&nc, nil)
	return nc.ResourceVersion
}

func (s *APISource) set(nc *v1alpha1.NodeConfig, err error) {
	s.mu.Lock()
	s.current, s.err = nc, err
	s.read = s.read || err == nil
	s.mu.Unlock()
	s.signal()
}

// readFailed says whether the last read of the NodeConfig failed.
func (s *APISource) readFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

func (s *APISource) currentObject() *v1alpha1.NodeConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// errNotRead holds the first pass until what it derives from was read: a
// restarted agent must not apply a config without its shared entries (nor
// tear down for want of a config), which would drop routes that are fine.
var errNotRead = errors.New("NodeConfig or ClusterPeers not read yet")

// Spec is the Source of Run: the NodeConfig made complete with the
// ClusterPeers it names (Compose).
func (s *APISource) Spec() (*v1alpha1.NodeConfigSpec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil && s.current == nil:
		return nil, s.err
	case !s.read:
		return nil, errNotRead
	case s.current == nil:
		return nil, ErrNoConfig
	case s.current.Spec.Peers != nil && !s.peers.synced:
		return nil, errNotRead
	}
	var choice peering.Choice
	var haVer uint64
	if s.ha != nil {
		choice, haVer = s.ha.Choice()
	}
	if s.composedOf != s.current || s.composedVer != s.peers.version || s.composedHA != haVer {
		s.composed, s.composedErr = ComposeWith(s.current, s.peers.list(), s.lastUsed, choice)
		s.composedOf, s.composedVer, s.composedHA = s.current, s.peers.version, haVer
		if s.composedErr == nil && s.current.Spec.Peers != nil {
			s.lastUsed = s.composed.Used
			if len(s.composed.Held) > 0 {
				s.log.Info("shard set incomplete: keeping what was derived before", "node", s.node, "clusters", s.composed.Held)
			}
		}
		if s.ha != nil && s.composedErr == nil {
			s.ha.Update(s.composed.Groups, DeviceAddrs(s.composed.Spec))
		}
		if s.Transit != nil && s.composedErr == nil {
			s.Transit.Want(s.composed.Transit)
		}
	}
	if s.composedErr != nil {
		return nil, s.composedErr
	}
	return s.composed.Spec, nil
}

// Report writes the outcome of a pass to the NodeConfig's status, only when
// it differs from what the status says already (a no-op resync writes
// nothing).
func (s *APISource) Report(ctx context.Context) func(*v1alpha1.NodeConfigSpec, Result, error) {
	return func(spec *v1alpha1.NodeConfigSpec, res Result, applyErr error) {
		s.mu.Lock()
		nc, composed := s.current, s.composed
		current := nc != nil && s.composedOf == nc && (spec == composed.Spec || spec == &nc.Spec)
		s.mu.Unlock()
		if !current {
			return // the config changed meanwhile: the next pass reports
		}
		st := nc.Status.DeepCopy()
		cond := metav1.Condition{Type: "Applied", Status: metav1.ConditionTrue, Reason: "Applied", Message: "the kernel holds this config", ObservedGeneration: nc.Generation}
		if applyErr != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Failed", applyErr.Error()
			if len(res.Applied) == 0 && len(res.Failed) == 0 {
				cond.Reason = "Refused"
			}
		}
		if applyErr == nil && len(res.Warnings) > 0 {
			for _, w := range res.Warnings {
				cond.Message += "; note: " + w.Error()
			}
		}
		changed := meta.SetStatusCondition(&st.Conditions, cond)
		ready := metav1.Condition{Type: "Ready", Status: cond.Status, Reason: cond.Reason, Message: cond.Message, ObservedGeneration: nc.Generation}
		changed = meta.SetStatusCondition(&st.Conditions, ready) || changed
		if st.ObservedGeneration != nc.Generation {
			st.ObservedGeneration, changed = nc.Generation, true
		}
		if applyErr == nil && !slices.Equal(st.Peers, composed.Peers) {
			st.Peers, changed = composed.Peers, true
		}
		// The agent says it speaks the shared contract once it has applied
		// a NodeConfig that uses it (spec.peers): before that, the
		// reconciler keeps writing it complete NodeConfigs.
		if nc.Spec.Peers != nil && st.Contract != v1alpha1.ContractShared {
			st.Contract, changed = v1alpha1.ContractShared, true
		}
		if s.WireGuardStatus != nil {
			if ws := s.WireGuardStatus(); ws != nil && (st.WireGuard == nil || *st.WireGuard != *ws) {
				st.WireGuard, changed = ws, true
			}
		}
		if s.ha != nil && applyErr == nil {
			if g := s.ha.Status(); !sameChoices(st.Gateways, g) {
				st.Gateways, changed = g, true
			}
		}
		if len(res.Applied) > 0 {
			st.LastChanges = nil
			for i, op := range res.Applied {
				if i == 20 {
					st.LastChanges = append(st.LastChanges, fmt.Sprintf("… and %d more", len(res.Applied)-20))
					break
				}
				st.LastChanges = append(st.LastChanges, op.String())
			}
			changed = true
		}
		if !changed {
			return
		}
		upd := nc.DeepCopy()
		upd.Status = *st
		if err := s.c.Status().Update(ctx, upd); err != nil {
			s.log.Error("write NodeConfig status", "node", s.node, "err", err)
		}
	}
}

// sameChoices compares gateway choices by cluster and active candidate
// (not by time).
func sameChoices(a, b []v1alpha1.GatewayChoice) bool {
	return slices.EqualFunc(a, b, func(x, y v1alpha1.GatewayChoice) bool {
		return x.Cluster == y.Cluster && x.Device == y.Device && x.Active == y.Active && x.Planned == y.Planned &&
			slices.Equal(x.Down, y.Down) && (x.Answered == nil) == (y.Answered == nil) && (x.Answered == nil || *x.Answered == *y.Answered)
	})
}
