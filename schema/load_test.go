package schema

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kosmos.io/kosmos/internal/testinfra/golden"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// secretMarker appears in the credential cases; no message may echo it.
const secretMarker = "s3cr3t-do-not-print"

func TestValidTopologies(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	files = append(files, filepath.Join("..", "topology.example.yaml"))
	if len(files) < 5 {
		t.Fatalf("found only %d valid cases", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			topo, err := LoadFile(f)
			if err != nil {
				t.Fatalf("want valid, got:\n%v", err)
			}
			if topo.Spec.Host() == nil {
				t.Fatal("no host after load")
			}
		})
	}
}

// TestInvalidTopologies loads every file of testdata/invalid and compares the
// complete list of problems, exact text, with its .golden file.
func TestInvalidTopologies(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) < 50 {
		t.Fatalf("found only %d invalid cases", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(filepath.Base(f), data)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want Problems, got %v", err)
			}
			got := ps.Error() + "\n"
			if strings.Contains(got, secretMarker) {
				t.Errorf("a message echoes a credential:\n%s", got)
			}
			goldenFile := strings.TrimSuffix(f, ".yaml") + ".golden"
			golden.Assert(t, goldenFile, []byte(got))
		})
	}
}

func TestLoadLimits(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	_, err := Load("big.yaml", big)
	if err == nil || err.Error() != "big.yaml: file is larger than 1 MiB" {
		t.Errorf("oversized file: got %v", err)
	}
	if _, err := LoadFile("testdata/does-not-exist.yaml"); err == nil || errors.As(err, new(Problems)) {
		t.Errorf("missing file: want an I/O error, got %v", err)
	}
}

func TestSetDefaultsIsIdempotentAndComplete(t *testing.T) {
	topo, err := LoadFile("testdata/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	before := topo.DeepCopy()
	v1alpha1.SetDefaults(topo)
	if !equalJSON(t, before, topo) {
		t.Error("SetDefaults changed an already defaulted topology")
	}
	c := topo.Spec.Cluster("a")
	n := topo.Spec.Network
	checks := map[string]bool{
		"network.enabled":     *c.Network.Enabled,
		"network.mode":        c.Network.Mode == v1alpha1.ModeP2P,
		"network.ipFamily":    c.Network.IPFamily == v1alpha1.IPv4,
		"network.nic":         c.Network.NIC == "auto",
		"network.ipam":        c.Network.IPAM == v1alpha1.IPAMAuto,
		"gateway.replicas":    c.Network.Gateway.Replicas == 1,
		"tree.enabled member": *c.Tree.Enabled,
		"tree.enabled host":   !*topo.Spec.Host().Tree.Enabled,
		"tree.mode":           c.Tree.Mode == v1alpha1.TreeAggregate,
		"secretRef.key":       topo.Spec.Cluster("b").Kubeconfig.SecretRef.Key == "kubeconfig",
		"vxlan":               n.VXLAN.Bridge == v1alpha1.VXLANDevice{VNI: 54, Port: 4876} && n.VXLAN.Local == v1alpha1.VXLANDevice{VNI: 55, Port: 4877} && n.VXLAN.Bridge6 == v1alpha1.VXLANDevice{VNI: 64, Port: 4866} && n.VXLAN.Local6 == v1alpha1.VXLANDevice{VNI: 65, Port: 4867},
		"bridgeCIDRs":         n.BridgeCIDRs == v1alpha1.DualCIDR{IPv4: "220.0.0.0/8", IPv6: "9470::/16"},
		"localCIDRs":          n.LocalCIDRs == v1alpha1.DualCIDR{IPv4: "210.0.0.0/8", IPv6: "9480::/16"},
		"placement.mode":      topo.Spec.DistributionPolicies[0].Placement.Mode == v1alpha1.PlacementRequired,
		"dns.domain":          topo.Spec.DNS.Domain == "clusterset.local",
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("default %s not applied", name)
		}
	}
}

func TestProblemString(t *testing.T) {
	for _, c := range []struct {
		p    Problem
		want string
	}{
		{Problem{File: "t.yaml", Line: 14, Col: 9, Path: "spec.clusters[1].network.podCIDRs[0]", Message: `"10.0.0.0/33" is not a CIDR`},
			`t.yaml:14:9: spec.clusters[1].network.podCIDRs[0]: "10.0.0.0/33" is not a CIDR`},
		{Problem{File: "t.yaml", Message: "file is empty"}, "t.yaml: file is empty"},
		{Problem{Path: "spec", Message: "m"}, "spec: m"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"podCIDRs", "serviceCIDRs", "globalCIDRs", "mode"}
	for in, want := range map[string]string{"podCIDR": "podCIDRs", "PodCIDRs": "podCIDRs", "servceCIDRs": "serviceCIDRs", "zzz": "", "mod": "mode"} {
		if got := closest(in, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
