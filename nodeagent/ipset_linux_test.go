package nodeagent

import (
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestLinuxSetsInPlace: on a real kernel the peers and ranges are held in
// the agent's sets and the rules match them. A peer joining changes the
// sets' members in place (no chain is rewritten); a member removed by hand
// is put back by the next pass with one write; a set of someone else's
// name is left alone; a teardown destroys the agent's sets after the rules
// that match them.
func TestLinuxSetsInPlace(t *testing.T) {
	lk := freshKernel(t)
	spec := bigConfig(3)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	if err := netlink.IpsetCreate("OTHER-PEERS", setHashIP, netlink.IpsetCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := lk.Read()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range st.Sets {
		names = append(names, s.Name)
	}
	if want := []string{"KOSMOS-PEER4-4876", "KOSMOS-RANGE4"}; !slices.Equal(names, want) {
		t.Fatalf("sets read %v, want %v", names, want)
	}
	if got := st.Sets[0].Members; !slices.Equal(got, []string{"10.99.0.2", "10.99.0.3", "10.99.0.4"}) {
		t.Errorf("peers %v", got)
	}

	applied := func(res Result) []string {
		var out []string
		for _, op := range res.Applied {
			out = append(out, op.String())
		}
		return out
	}
	// A fourth peer joins: its FDB, neighbour, route and the two sets'
	// members; the chains stay as they are.
	res, err := Set(lk, bigConfig(4))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"set ipset KOSMOS-PEER4-4876 (+1 −0 members)", "set ipset KOSMOS-RANGE4 (+1 −0 members)",
		"add neigh 220.99.0.5 dev vx-bridge", "add fdb 02:00:00:00:00:05 dst 10.99.0.5 dev vx-bridge", "add route 172.16.3.0/24 via 220.99.0.5 dev vx-bridge",
	}
	if got := applied(res); !slices.Equal(got, want) {
		t.Errorf("a peer joins: wrote\n%q\nwant\n%q", got, want)
	}
	// A member removed behind the agent's back is put back.
	if err := netlink.IpsetDel("KOSMOS-PEER4-4876", &netlink.IPSetEntry{IP: net.ParseIP("10.99.0.3")}); err != nil {
		t.Fatal(err)
	}
	res, err = Set(lk, bigConfig(4))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := applied(res), []string{"set ipset KOSMOS-PEER4-4876 (+1 −0 members)"}; !slices.Equal(got, want) {
		t.Errorf("drift: wrote %q, want %q", got, want)
	}
	if _, err := Teardown(lk); err != nil {
		t.Fatal(err)
	}
	sets, err := netlink.IpsetListAll()
	if err != nil {
		t.Fatal(err)
	}
	names = names[:0]
	for _, s := range sets {
		names = append(names, s.SetName)
	}
	if !slices.Equal(names, []string{"OTHER-PEERS"}) {
		t.Errorf("after teardown the sets are %v, want only the other owner's", names)
	}
}
