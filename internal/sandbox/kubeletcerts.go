// This file gives the sandbox's API servers a kubelet client certificate,
// as kubeadm does (apiserver-kubelet-client.crt): `kubectl logs` and
// `exec` make an API server call the pod's node's kubelet with it. The
// host's API server calls the tree's kubelet endpoint (its virtual
// nodes), each member's calls the simulated kubelets; both check the
// certificate against the CA made here.

package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// KubeletClientUser is the user (certificate common name) the sandbox's
// API servers present to kubelets (no group). In the host it is bound to
// system:kubelet-api-admin, as kubeadm binds its own.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// kubeletPKI is the CA that signs the API servers' kubelet client
// certificate, and where the files are.
type kubeletPKI struct {
	// CAFile holds the CA certificate (PEM); Pool holds it too.
	CAFile string
	Pool   *x509.CertPool
	// CertFile and KeyFile are the API servers' client certificate and
	// key (--kubelet-client-certificate, --kubelet-client-key).
	CertFile, KeyFile string
}

// APIServerArgs are the kube-apiserver flags that use it.
func (p *kubeletPKI) APIServerArgs() map[string]string {
	return map[string]string{"kubelet-client-certificate": p.CertFile, "kubelet-client-key": p.KeyFile}
}

// newKubeletPKI makes a CA and a client certificate it signs, valid for a
// year, in dir (files 0600).
func newKubeletPKI(dir string) (*kubeletPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kosmos-sandbox-kubelet-client-ca"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("kubelet client CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: KubeletClientUser},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	p := &kubeletPKI{CAFile: filepath.Join(dir, "kubelet-client-ca.crt"), Pool: x509.NewCertPool(),
		CertFile: filepath.Join(dir, "apiserver-kubelet-client.crt"), KeyFile: filepath.Join(dir, "apiserver-kubelet-client.key")}
	p.Pool.AddCert(ca)
	for file, block := range map[string]*pem.Block{
		p.CAFile:   {Type: "CERTIFICATE", Bytes: caDER},
		p.CertFile: {Type: "CERTIFICATE", Bytes: der},
		p.KeyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", file, err)
		}
	}
	return p, nil
}

// servingCertificate is a self-signed serving certificate for a simulated
// kubelet on loopback (API servers verify kubelets' certificates only with
// --kubelet-certificate-authority, which the sandbox does not set).
func servingCertificate(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate of %s: %w", name, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
