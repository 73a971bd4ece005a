package nodeagent

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"kosmos.io/kosmos/internal/testinfra/golden"
)

// TestRestoreInputGolden: the iptables-restore transactions Set writes for
// the gateway config on an empty kernel, then after a change of one NAT
// mapping (one transaction for the nat table, both chains declared, so
// emptied and refilled inside it), then with a jump found missing, and at
// teardown.
func TestRestoreInputGolden(t *testing.T) {
	finding(t, "kernel: NAT chains written atomically")
	spec := loadConfigs(t)["gateway"].Spec.DeepCopy()
	k := &FakeKernel{}
	var out strings.Builder
	record := func(title string, res Result) {
		out.WriteString("# " + title + "\n")
		for _, op := range res.Applied {
			if op.Chains != nil {
				out.WriteString("## " + op.String() + "\n" + restoreInput(op.Chains))
			}
		}
	}
	res, err := Set(k, spec)
	if err != nil {
		t.Fatal(err)
	}
	record("empty kernel", res)
	spec.NAT.Mappings[0].GlobalCIDR = "100.66.0.0/16"
	if res, err = Set(k, spec); err != nil {
		t.Fatal(err)
	}
	if n := len(slices.DeleteFunc(slices.Clone(res.Applied), func(op Op) bool { return op.Chains == nil })); n != 1 {
		t.Errorf("a NAT change wrote %d chain transactions, want 1: %v", n, res.Applied)
	}
	record("one mapping changed", res)
	i := slices.IndexFunc(k.S.Chains, func(c Chain) bool { return c.Name == ChainPrerouting && c.Family == "ipv4" })
	k.S.Chains[i].Rules = append(slices.Clone(k.S.Chains[i].Rules), "(no jump from PREROUTING)")
	if res, err = Set(k, spec); err != nil {
		t.Fatal(err)
	}
	record("jump from PREROUTING missing", res)
	if res, err = Teardown(k); err != nil {
		t.Fatal(err)
	}
	record("teardown", res)
	golden.Assert(t, filepath.Join("testdata", "gateway.restore"), []byte(out.String()))
}
