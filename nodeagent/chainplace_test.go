package nodeagent

import "testing"

// TestPostroutingMisplaced: the POSTROUTING jump is misplaced only below a
// rule that rewrites sources itself; below jumps to other chains (Calico's
// cali-POSTROUTING, which felix re-inserts first on every refresh,
// kube-proxy's KUBE-POSTROUTING, flannel's chain) it stays where it is, so
// the agent and felix do not take turns at the top.
func TestPostroutingMisplaced(t *testing.T) {
	for _, c := range []struct {
		name  string
		above []string
		want  bool
	}{
		{"first", nil, false},
		{"below Calico's jump", []string{"-m comment --comment \"cali:O3lYWMrLQYEMJtB5\" -j cali-POSTROUTING"}, false},
		{"below kube-proxy and flannel", []string{"-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING", "-j FLANNEL-POSTRTG"}, false},
		{"goto a chain", []string{"-g IP-MASQ"}, false},
		{"below a CNI's MASQUERADE", []string{"-s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE"}, true},
		{"below MASQUERADE --random-fully", []string{"-j cali-POSTROUTING", "-o eth0 -j MASQUERADE --random-fully"}, true},
		{"below SNAT", []string{"-s 10.0.0.0/8 -j SNAT --to-source 192.168.1.10"}, true},
		{"below NETMAP", []string{"-s 10.0.0.0/8 -j NETMAP --to 172.16.0.0/8"}, true},
		{"below RETURN and ACCEPT", []string{"-d 10.0.0.0/8 -j RETURN", "-j ACCEPT"}, false},
		{"comment names MASQUERADE", []string{"-m comment --comment MASQUERADE -j KUBE-POSTROUTING"}, false},
		{"quoted comment holds -j MASQUERADE", []string{"-m comment --comment \"not -j MASQUERADE\" -j KUBE-POSTROUTING"}, false},
		{"quoted comment holds -j, then SNAT", []string{"-m comment --comment \"a -j b\" -j SNAT --to-source 192.168.1.10"}, true},
	} {
		if got := postroutingMisplaced(c.above); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRawMisplaced: the raw table's jumps are misplaced only below a rule
// that ends the table for what it matches or gives it a conntrack template
// of its own; below a jump to another chain (felix's cali-PREROUTING) or
// another NOTRACK they stay where they are.
func TestRawMisplaced(t *testing.T) {
	for _, c := range []struct {
		name  string
		above []string
		want  bool
	}{
		{"first", nil, false},
		{"below Calico's jump", []string{"-m comment --comment \"cali:6gwbT8clXdHdC1b1\" -j cali-PREROUTING"}, false},
		{"below a goto", []string{"-g SOMEWHERE"}, true},
		{"below NFQUEUE", []string{"-p udp -j NFQUEUE --queue-num 3"}, true},
		{"below CT --helper", []string{"-p udp -j CT --helper tftp"}, true},
		{"quoted comment holds -j ACCEPT", []string{"-m comment --comment \"x -j ACCEPT y\" -j cali-PREROUTING"}, false},
		{"quoted comment holds -j, then ACCEPT", []string{"-m comment --comment \"x -j y\" -j ACCEPT"}, true},
		{"escaped quote in a comment", []string{"-m comment --comment \"say \\\" -j ACCEPT\" -j cali-PREROUTING"}, false},
		{"LOG prefix holds -j ACCEPT", []string{"-j LOG --log-prefix \"raw -j ACCEPT \""}, false},
		{"below another NOTRACK", []string{"-p udp -m udp --dport 8472 -j NOTRACK"}, false},
		{"below CT --notrack", []string{"-p udp -j CT --notrack"}, false},
		{"below an ACCEPT", []string{"-p udp -j ACCEPT"}, true},
		{"below a DROP", []string{"-s 203.0.113.0/24 -j DROP"}, true},
		{"below a RETURN", []string{"-i eth0 -j RETURN"}, true},
		{"below a CT zone", []string{"-i eth0 -j CT --zone 7"}, true},
		{"below MARK, then ACCEPT", []string{"-j MARK --set-xmark 0x1/0x1", "-m mark --mark 0x1/0x1 -j ACCEPT"}, true},
		{"comment names ACCEPT", []string{"-m comment --comment ACCEPT -j KUBE-RAW"}, false},
	} {
		if got := rawMisplaced(c.above); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
