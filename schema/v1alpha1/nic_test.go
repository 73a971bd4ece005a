package v1alpha1

import (
	"fmt"
	"testing"
)

func TestParseNIC(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "{Auto:true}"},
		{"auto", "{Auto:true}"},
		{"eth0", "{Name:eth0}"},
		{"cidr:192.168.1.7/24", "{CIDR:192.168.1.0/24}"},
		{"cidr:fd00::/64", "{CIDR:fd00::/64}"},
		{"can-reach:10.0.0.1", "{CanReach:10.0.0.1}"},
		{"can-reach:fd00::1", "{CanReach:fd00::1}"},
		{"cidr:nope", `error: "cidr:nope": the part after cidr: is not a CIDR`},
		{"can-reach:10.0.0.0/8", `error: "can-reach:10.0.0.0/8": the part after can-reach: is not an IP address`},
		{"averyveryverylongname", `error: "averyveryverylongname" is not auto, an interface name (1 to 15 characters, no '/', ':' or white space), cidr:<CIDR> nor can-reach:<IP>`},
		{"eth:0", `error: "eth:0" is not auto, an interface name (1 to 15 characters, no '/', ':' or white space), cidr:<CIDR> nor can-reach:<IP>`},
	} {
		sel, err := ParseNIC(c.in)
		var got string
		switch {
		case err != nil:
			got = "error: " + err.Error()
		case sel.Auto:
			got = "{Auto:true}"
		case sel.Name != "":
			got = "{Name:" + sel.Name + "}"
		case sel.CIDR.IsValid():
			got = fmt.Sprintf("{CIDR:%s}", sel.CIDR)
		case sel.CanReach.IsValid():
			got = fmt.Sprintf("{CanReach:%s}", sel.CanReach)
		}
		if got != c.want {
			t.Errorf("ParseNIC(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}
