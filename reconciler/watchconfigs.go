package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// agentView is what the plan reads from the NodeConfigs' status, per node
// (see agentFacts).
type agentView map[string]agentFacts

// agentFacts are the parts of a NodeConfig's status the plan reads: whether
// its agent is of the earlier contract (desired.LegacyAgent), which decides
// between a compact and a complete NodeConfig; the gateway candidates it
// sends through (gateway HA: the plan catches up with the agents); and its
// published WireGuard key (peers cannot encrypt to it before the plan
// carries it).
type agentFacts struct {
	legacy   bool
	gateways string
	key      string
}

func factsOf(nc *v1alpha1.NodeConfig) agentFacts {
	f := agentFacts{legacy: desired.LegacyAgent(nc)}
	for _, g := range nc.Status.Gateways {
		f.gateways += g.Cluster + "/" + g.Device + "=" + g.Active + "<" + g.Planned + ","
		// What the probes find down and whether the candidate in use
		// answered decide the split and what keeps a NotReady gateway.
		f.gateways += fmt.Sprintf("%v%v;", g.Down, g.Answered != nil && *g.Answered)
	}
	if w := nc.Status.WireGuard; w != nil {
		f.key = w.PublicKey + "/" + w.NextPublicKey
	}
	return f
}

// observe records one watch event and says whether it changes the plan: an
// agent that starts or stops deriving from the shared objects (an upgrade,
// or a rollback to the earlier release, which then needs its complete
// NodeConfig at once, not at the next resync), one whose probes moved it to
// another gateway candidate (or that read a new plan while its probes keep
// it where it is: status.gateways[].planned, or whose probes found a
// candidate down or had the first answer: .down, .answered), or one that published (or rotated) its
// WireGuard key. Other status writes (every
// apply's condition, lastChanges, generations) and the reconciler's own spec
// writes change nothing the plan reads and wake nothing. A NodeConfig seen
// for the first time wakes nothing either: the pass that follows a
// connection reads them all.
func (v agentView) observe(typ watch.EventType, nc *v1alpha1.NodeConfig) bool {
	if typ == watch.Deleted {
		delete(v, nc.Name)
		return false
	}
	if typ != watch.Added && typ != watch.Modified {
		return false
	}
	now := factsOf(nc)
	was, had := v[nc.Name]
	v[nc.Name] = now
	return had && was != now
}

// watchNodeConfigs fires when an agent's report changes the plan (see
// agentView.observe), restarting the watch when it ends. Only NodeConfigs
// Kosmos manages are watched.
func watchNodeConfigs(ctx context.Context, cl Cluster, fire func(), log *slog.Logger) {
	cfg := rest.CopyConfig(cl.Config)
	cfg.Timeout = 0 // a watch lasts
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: cl.Client.Scheme()})
	if err != nil {
		log.Error("NodeConfig watch", "cluster", cl.Name, "err", err)
		return
	}
	view := agentView{}
	for ctx.Err() == nil {
		w, err := wc.Watch(ctx, &v1alpha1.NodeConfigList{}, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy})
		if err != nil {
			select { // the CRD may not be installed yet, or the cluster is down
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
			continue
		}
		for ev := range w.ResultChan() {
			nc, ok := ev.Object.(*v1alpha1.NodeConfig)
			if !ok {
				continue
			}
			before := view[nc.Name].gateways
			if view.observe(ev.Type, nc) {
				fire()
				if view[nc.Name].gateways != before {
					// The catch-up counts a move only once it is older
					// than the hold (status times are in whole seconds):
					// look again then.
					time.AfterFunc(netplan.CatchUpHold+time.Second, fire)
				}
			}
		}
		w.Stop()
	}
}
