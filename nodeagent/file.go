package nodeagent

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// LoadNodeConfigFile reads one NodeConfig from a YAML or JSON file, strictly:
// unknown fields are errors.
func LoadNodeConfigFile(path string) (*v1alpha1.NodeConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var nc v1alpha1.NodeConfig
	if err := yaml.UnmarshalStrict(data, &nc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if nc.Kind != v1alpha1.KindNodeConfig || nc.APIVersion != v1alpha1.APIVersion {
		return nil, fmt.Errorf("%s: want apiVersion %s, kind %s; got %q, %q", path, v1alpha1.APIVersion, v1alpha1.KindNodeConfig, nc.APIVersion, nc.Kind)
	}
	return &nc, nil
}
