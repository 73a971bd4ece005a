package distribution

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestParseArgs(t *testing.T) {
	raw := func(s string) runtime.Object { return &runtime.Unknown{Raw: []byte(s)} }
	for _, tc := range []struct {
		name    string
		obj     runtime.Object
		want    Args
		wantErr string
	}{
		{name: "no args", obj: nil, want: Args{HostCluster: "host"}},
		{name: "empty raw", obj: &runtime.Unknown{}, want: Args{HostCluster: "host"}},
		{name: "empty object", obj: raw(`{}`), want: Args{HostCluster: "host"}},
		{name: "host cluster set", obj: raw(`{"hostCluster":"eu-1"}`), want: Args{HostCluster: "eu-1"}},
		{name: "yaml", obj: &runtime.Unknown{Raw: []byte("hostCluster: west\n"), ContentType: runtime.ContentTypeYAML}, want: Args{HostCluster: "west"}},
		{name: "not a label", obj: raw(`{"hostCluster":"Not_A_Label"}`), wantErr: `KosmosDistribution args: hostCluster "Not_A_Label"`},
		{name: "too long", obj: raw(`{"hostCluster":"` + strings.Repeat("a", 64) + `"}`), wantErr: "must be no more than 63 characters"},
		{name: "wrong type", obj: raw(`{"hostCluster":3}`), wantErr: "KosmosDistribution args: json: cannot unmarshal number"},
		{name: "not json", obj: raw(`{`), wantErr: "KosmosDistribution args:"},
		{name: "unsupported content type", obj: &runtime.Unknown{Raw: []byte(`x`), ContentType: "text/plain"}, wantErr: "not supported content type"},
		{name: "not runtime.Unknown", obj: &corev1.Pod{}, wantErr: "want args of type runtime.Unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs(tc.obj)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if got != (Args{}) {
					t.Errorf("args %+v with the error, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("args %+v, want %+v", got, tc.want)
			}
		})
	}
}
