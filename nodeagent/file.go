package nodeagent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// LoadNodeConfigFile reads one NodeConfig from a YAML or JSON file, strictly:
// unknown fields are errors. A file that also holds ClusterPeers documents
// is read by LoadConfigFile.
func LoadNodeConfigFile(path string) (*v1alpha1.NodeConfig, error) {
	nc, _, err := LoadConfigFile(path)
	return nc, err
}

// LoadConfigFile reads a file of YAML documents: exactly one NodeConfig and
// any number of ClusterPeers (the shared objects a NodeConfig with
// spec.peers is completed from), strictly: unknown fields and other kinds
// are errors.
func LoadConfigFile(path string) (*v1alpha1.NodeConfig, []v1alpha1.ClusterPeers, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var nc *v1alpha1.NodeConfig
	var peers []v1alpha1.ClusterPeers
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		switch {
		case tm.APIVersion != v1alpha1.APIVersion:
			return nil, nil, fmt.Errorf("%s: document %d: want apiVersion %s, kind %s or %s; got %q, %q", path, i+1, v1alpha1.APIVersion, v1alpha1.KindNodeConfig, v1alpha1.KindClusterPeers, tm.APIVersion, tm.Kind)
		case tm.Kind == v1alpha1.KindNodeConfig && nc == nil:
			nc = &v1alpha1.NodeConfig{}
			err = yaml.UnmarshalStrict(doc, nc)
		case tm.Kind == v1alpha1.KindClusterPeers:
			peers = append(peers, v1alpha1.ClusterPeers{})
			err = yaml.UnmarshalStrict(doc, &peers[len(peers)-1])
		default:
			err = fmt.Errorf("want one NodeConfig and any number of ClusterPeers; got %q", tm.Kind)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
	}
	if nc == nil {
		return nil, nil, fmt.Errorf("%s: want apiVersion %s, kind %s; found none", path, v1alpha1.APIVersion, v1alpha1.KindNodeConfig)
	}
	return nc, peers, nil
}
