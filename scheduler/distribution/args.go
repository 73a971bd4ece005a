package distribution

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
)

// DefaultHostCluster is Args.HostCluster when the configuration sets none.
const DefaultHostCluster = "host"

// Args are the plugin's arguments (pluginConfig args in the
// KubeSchedulerConfiguration).
type Args struct {
	// HostCluster names the host's own nodes' cluster when a policy does not
	// (default "host"). It must be a DNS-1123 label.
	HostCluster string `json:"hostCluster,omitempty"`
}

// ParseArgs decodes the plugin's args (nil: none given), fills in the
// defaults and validates the result.
func ParseArgs(obj runtime.Object) (Args, error) {
	var args Args
	if err := frameworkruntime.DecodeInto(obj, &args); err != nil {
		return Args{}, fmt.Errorf("%s args: %w", Name, err)
	}
	if args.HostCluster == "" {
		args.HostCluster = DefaultHostCluster
	}
	if errs := validation.IsDNS1123Label(args.HostCluster); len(errs) > 0 {
		return Args{}, fmt.Errorf("%s args: hostCluster %q: %s", Name, args.HostCluster, strings.Join(errs, "; "))
	}
	return args, nil
}
