// This file wires `kubectl logs` and `kubectl exec` through the sandbox,
// the whole path as in a real installation: kubectl → host API server
// (its kubelet client certificate) → the tree's kubelet endpoint of the
// pod's virtual node → the member's API server (the tree's identity there)
// → the member API server's kubelet client certificate → the simulated
// kubelet of the machine (kubeletserver.go).

package sandbox

import (
	"context"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/tree"
	treekubelet "kosmos.io/kosmos/tree/kubelet"
)

// KubeletHostname is the Hostname address of every simulated machine:
// its kubelet endpoint listens on loopback.
const KubeletHostname = "localhost"

// withKubeletEndpoint is node n (a copy) with the simulated kubelet's
// endpoint: a Hostname address, which API servers prefer to the
// InternalIP (the data plane's underlay, not reachable from them), and
// the port.
func withKubeletEndpoint(n corev1.Node, port int32) corev1.Node {
	n = *n.DeepCopy()
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: KubeletHostname})
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	return n
}

// serveKubelet starts k's kubelet endpoint on loopback until the sandbox
// stops, and returns its port. With the data plane, exec runs in the
// machine's pod namespace.
func (s *Sandbox) serveKubelet(k *kubelet) (int32, error) {
	if w := s.world; w != nil {
		cluster := k.cluster
		k.netns = func(node string) string { return w.PodNS(cluster, node) }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("simulated kubelet of %s: %w", k.cluster, err)
	}
	s.wg.Go(func() {
		if err := k.serve(s.ctx, ln, s.pki); err != nil && s.ctx.Err() == nil {
			s.o.Log.Error("simulated kubelet endpoint", "cluster", k.cluster, "err", err)
		}
	})
	return int32(ln.Addr().(*net.TCPAddr).Port), nil
}

// bindKubeletClient lets the host API server's kubelet client call the
// kubelet API of every node (the tree's endpoint asks the host with a
// SubjectAccessReview), as kubeadm binds it to system:kubelet-api-admin.
func (s *Sandbox) bindKubeletClient(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(s.Env.Cluster(s.hostName()).Config)
	if err != nil {
		return err
	}
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kosmos-sandbox:kubelet-api-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: KubeletClientUser}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("host: bind %s to system:kubelet-api-admin: %w", KubeletClientUser, err)
	}
	return nil
}

// treeKubelet opens the tree's kubelet endpoint on loopback (as `kosmos
// tree --kubelet-client-ca --node-ip` does), so the virtual nodes
// advertise it; the returned function serves it until ctx ends.
func (s *Sandbox) treeKubelet(ctx context.Context, ctl *tree.Controller) (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tree kubelet endpoint: %w", err)
	}
	ctl.NodeIP, ctl.KubeletPort = "127.0.0.1", int32(ln.Addr().(*net.TCPAddr).Port)
	srv := &treekubelet.Server{Tree: ctl, ClientCA: s.pki.Pool, Log: s.o.Log}
	return func() {
		if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			s.o.Log.Error("tree kubelet endpoint", "err", err)
		}
	}, nil
}
