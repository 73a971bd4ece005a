package scheduler

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/component-base/configz"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

func registryOptions() []app.Option {
	var opts []app.Option
	for name, f := range Registry() {
		opts = append(opts, app.WithPlugin(name, f))
	}
	return opts
}

// Command is `kosmos scheduler`: the real kube-scheduler, every flag of
// it, with the Kosmos plugins registered. Give it a
// KubeSchedulerConfiguration with the kosmos-scheduler profile (see
// kustomize/base/scheduler).
func Command() *cobra.Command {
	cmd := app.NewSchedulerCommand(registryOptions()...)
	cmd.Use = "scheduler"
	cmd.Short = "kube-scheduler with the Kosmos plugins (distribution, leaf fit, leaf taint, volume binding)"
	cmd.Long = `The real kube-scheduler, with every flag of it, plus the Kosmos plugins:

  KosmosDistribution  splits the replicas of a workload matched by a
                      DistributionPolicy over clusters (and the host's nodes
                      with includeHost) by weights (largest remainder) or fixed
                      counts, or spreads them by region, zone or cluster
                      within maxSkew; Required rejects nodes that would break
                      the policy, Preferred only scores.
  KosmosLeafFit       lets a pod onto a member cluster's virtual node only
                      when one single member node has room for it.
  KosmosLeafTaint     TaintToleration's filter, except that pods a policy sends
                      to member clusters tolerate the kosmos.io/leaf taint.
  KosmosVolumeBinding VolumeBinding and VolumeZone on the host's nodes; on a
                      virtual node, a pod with unbound claims fits when the
                      member offers their storage classes (the node's
                      kosmos.io/storage-classes annotation).

Run it with the KubeSchedulerConfiguration in kustomize/base/scheduler (the
kosmos-scheduler profile); pods opt in with schedulerName: kosmos-scheduler.`
	cmd.Example = `  kosmos scheduler --config /etc/kosmos/scheduler-config.yaml`
	return cmd
}

// Run runs the scheduler in this process with the configuration file until
// ctx ends (tests, the local sandbox). It returns once the scheduler is set
// up; the scheduler's end is reported on the returned channel. Once that
// end is reported, Run may be called again (a restarted scheduler): the
// configuration the scheduler registers process-wide (configz) goes with
// it.
func Run(ctx context.Context, configFile string) (<-chan error, error) {
	o := options.NewOptions()
	if err := o.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	o.ConfigFile = configFile
	o.SecureServing.BindPort = 0 // no serving in process
	cc, sched, err := app.Setup(ctx, o, registryOptions()...)
	if err != nil {
		return nil, fmt.Errorf("scheduler setup: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		err := app.Run(ctx, cc, sched)
		configz.Delete("componentconfig") // registered by app.Run, once per process
		done <- err
	}()
	return done, nil
}
