package kubeconfig

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Markers that stand for credentials; no error may quote one.
const (
	tokenMarker = "tok-s3cr3t-do-not-print"
	certMarker  = "cert-s3cr3t-do-not-print"
	caMarker    = "ca-s3cr3t-do-not-print"
	pathMarker  = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// kubeconfigWith returns a one-context kubeconfig with inline credentials,
// changed by edit.
func kubeconfigWith(edit func(c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo)) []byte {
	kc := clientcmdapi.NewConfig()
	c := &clientcmdapi.Cluster{Server: "https://member.example:6443", CertificateAuthorityData: []byte(caMarker)}
	u := &clientcmdapi.AuthInfo{Token: tokenMarker}
	edit(c, u)
	kc.Clusters["m"], kc.AuthInfos["m"] = c, u
	kc.Contexts["m"] = &clientcmdapi.Context{Cluster: "m", AuthInfo: "m"}
	kc.CurrentContext = "m"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		panic(err)
	}
	return data
}

type hostileCase struct {
	name  string
	data  []byte
	field string // the field the error must name
}

func hostileKubeconfigs() []hostileCase {
	return []hostileCase{
		{"issue 16: server elsewhere, insecure, the reader's own token file", kubeconfigWith(func(c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			c.Server, c.CertificateAuthorityData, c.InsecureSkipTLSVerify = "https://elsewhere.example", nil, true
			u.Token, u.TokenFile = "", pathMarker
		}), "tokenFile"},
		{"tokenFile beside a token", kubeconfigWith(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.TokenFile = pathMarker }), "tokenFile"},
		{"client-certificate path", kubeconfigWith(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token, u.ClientCertificate, u.ClientKeyData = "", "/etc/kubernetes/pki/apiserver-kubelet-client.crt", []byte(certMarker)
		}), "client-certificate"},
		{"client-key path", kubeconfigWith(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token, u.ClientCertificateData, u.ClientKey = "", []byte(certMarker), "/etc/kubernetes/pki/apiserver-kubelet-client.key"
		}), "client-key"},
		{"certificate-authority path", kubeconfigWith(func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.CertificateAuthority = nil, "/etc/ssl/certs/ca-certificates.crt"
		}), "certificate-authority"},
		{"proxy-url", kubeconfigWith(func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) { c.ProxyURL = "http://proxy.example:3128" }), "proxy-url"},
		{"insecure-skip-tls-verify", kubeconfigWith(func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
		}), "insecure-skip-tls-verify"},
		{"exec plugin", kubeconfigWith(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Exec = &clientcmdapi.ExecConfig{Command: "/bin/sh", APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
		}), "exec"},
		{"auth provider", kubeconfigWith(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		}), "auth-provider"},
	}
}

// TestCheckInline is the pure rule: every hostile kubeconfig is refused,
// naming its field; the option admits insecure-skip-tls-verify only.
func TestCheckInline(t *testing.T) {
	for _, c := range hostileKubeconfigs() {
		t.Run(c.name, func(t *testing.T) {
			kc, err := clientcmd.Load(c.data)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckInline(kc, Options{})
			if err == nil || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("want a refusal naming %s, got %v", c.field, err)
			}
			err = CheckInline(kc, Options{AllowInsecureSkipTLSVerify: true})
			if (err == nil) != (c.field == "insecure-skip-tls-verify") {
				t.Errorf("with AllowInsecureSkipTLSVerify: got %v", err)
			}
		})
	}
	kc, _ := clientcmd.Load(kubeconfigWith(func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo) {}))
	if err := CheckInline(kc, Options{}); err != nil {
		t.Errorf("inline kubeconfig refused: %v", err)
	}
}

// TestFromSecretRefusesHostileKubeconfigs stores each hostile kubeconfig in
// a Secret of a real API server and reads it the way the reconciler and the
// tree do: every one is refused, the error names the Secret, the key and
// the field, and quotes none of its content.
func TestFromSecretRefusesHostileKubeconfigs(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host"}})
	ctx := context.Background()
	hc, err := client.New(env.Cluster("host").Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := hc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-system"}}); err != nil {
		t.Fatal(err)
	}
	cases := append(hostileKubeconfigs(), hostileCase{"not a kubeconfig", []byte("{" + tokenMarker), "not a valid kubeconfig"})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "kc-" + string(rune('a'+i))
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kosmos-system", Name: name}, Data: map[string][]byte{"kubeconfig": c.data}}
			if err := hc.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			cfg, _, err := FromSecret(ctx, hc, v1alpha1.SecretKeyRef{Name: name}, "kosmos-system", Options{})
			if err == nil {
				t.Fatalf("accepted (server %s)", cfg.Host)
			}
			msg := err.Error()
			if !strings.Contains(msg, "kubeconfig Secret kosmos-system/"+name+` key "kubeconfig"`) || !strings.Contains(msg, c.field) {
				t.Errorf("error does not name the Secret, key and %s: %s", c.field, msg)
			}
			for _, secret := range []string{tokenMarker, certMarker, caMarker, pathMarker, "/etc/", "proxy.example", "elsewhere"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error quotes the Secret's content %q: %s", secret, msg)
				}
			}
		})
	}
	good := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kosmos-system", Name: "kc-good"},
		Data: map[string][]byte{"kubeconfig": kubeconfigWith(func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo) {})}}
	if err := hc.Create(ctx, good); err != nil {
		t.Fatal(err)
	}
	if cfg, _, err := FromSecret(ctx, hc, v1alpha1.SecretKeyRef{Name: "kc-good"}, "kosmos-system", Options{}); err != nil || cfg.BearerToken != tokenMarker {
		t.Errorf("inline kubeconfig: %v", err)
	}
}
