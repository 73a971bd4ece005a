package kustomize_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestAgentPublishesOwnKeyOnly: with the host overlay's RBAC and admission
// policy applied for real, an agent (the kosmos-agent ServiceAccount, its
// token bound to its pod on node n1, as the DaemonSet's pods get it) may
// publish the WireGuard key of n1's NodeConfig and not of n2's, which the
// agent on n2 may. Before the fix (RBAC alone) the agent on n1 could write
// n2's key: a compromised node could pose as another (MITM).
func TestAgentPublishesOwnKeyOnly(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host"}, CRDDirs: []string{crdDir}})
	admin := env.Cluster("host").Config
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	scheme, err := reconciler.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	host, err := client.New(admin, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	applyRBAC(ctx, t, admin, "overlays/host")
	a := newApplier(t, admin)
	policies := 0
	for _, u := range build(t, "overlays/host") {
		if strings.HasPrefix(u.GetKind(), "ValidatingAdmissionPolicy") {
			if err := a.apply(ctx, u, false); err != nil {
				t.Fatalf("apply %s: %v", objKey(u), err)
			}
			policies++
		}
	}
	if policies != 2 {
		t.Fatalf("the host overlay has %d admission policy objects, want the policy and its binding", policies)
	}

	agents := map[string]client.Client{}
	for _, n := range []string{"n1", "n2"} {
		if err := testenv.CreateNode(ctx, host, n, []string{"192.168.1.1"}, nil, nil); err != nil {
			t.Fatal(err)
		}
		nc := &v1alpha1.NodeConfig{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if err := host.Create(ctx, nc); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kosmos-system", Name: "agent-" + n}, Spec: corev1.PodSpec{
			NodeName: n, ServiceAccountName: "kosmos-agent", Containers: []corev1.Container{{Name: "agent", Image: "kosmos"}}}}
		if pod, err = cs.CoreV1().Pods("kosmos-system").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		exp := int64(3600)
		tr, err := cs.CoreV1().ServiceAccounts("kosmos-system").CreateToken(ctx, "kosmos-agent", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &exp, BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token bound to pod %s: %v", pod.Name, err)
		}
		cfg := &rest.Config{Host: admin.Host, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData}}
		who, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := who.Status.UserInfo.Extra["authentication.kubernetes.io/node-name"]; len(got) != 1 || got[0] != n {
			t.Fatalf("the token of the agent on %s carries node-name %v (user %+v)", n, got, who.Status.UserInfo)
		}
		if agents[n], err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
			t.Fatal(err)
		}
	}
	publishNext := func(agent, node, key, next string, dry bool) error {
		var nc v1alpha1.NodeConfig
		if err := host.Get(ctx, client.ObjectKey{Name: node}, &nc); err != nil {
			t.Fatal(err)
		}
		nc.Status.WireGuard = &v1alpha1.WireGuardStatus{PublicKey: key, NextPublicKey: next}
		var opts []client.SubResourceUpdateOption
		if dry {
			opts = append(opts, client.DryRunAll)
		}
		return agents[agent].Status().Update(ctx, &nc, opts...)
	}
	publish := func(agent, node, key string, dry bool) error { return publishNext(agent, node, key, "", dry) }
	key := func(i int) string { return fmt.Sprintf("%042dA=", i) }
	// The API server loads a new policy within seconds: wait (dry runs, so
	// nothing is written meanwhile) until it denies.
	poll.NoError(t, 30*time.Second, "the policy to deny n1's agent writing n2's key", func() error {
		if err := publish("n1", "n2", key(9), true); err == nil {
			return fmt.Errorf("allowed")
		}
		return nil
	})
	err = publish("n1", "n2", key(9), false)
	if err == nil || !strings.Contains(err.Error(), "the kosmos agent on node n1 may publish the WireGuard key of its own node only, not of n2") {
		t.Errorf("n1's agent writing n2's key: %v", err)
	}
	for _, n := range []string{"n1", "n2"} {
		if err := publish(n, n, key(int(n[1]-'0')), false); err != nil {
			t.Errorf("the agent on %s publishing its own key: %v", n, err)
		}
	}
	var nc v1alpha1.NodeConfig
	if err := host.Get(ctx, client.ObjectKey{Name: "n2"}, &nc); err != nil || nc.Status.WireGuard == nil || nc.Status.WireGuard.PublicKey != key(2) {
		t.Errorf("n2's status %+v, %v", nc.Status.WireGuard, err)
	}
	// The key a node rotates to (nextPublicKey) is covered alike: n1's
	// agent may not plant a next key in n2's status, n2's may.
	err = publishNext("n1", "n2", key(2), key(9), false)
	if err == nil || !strings.Contains(err.Error(), "may publish the WireGuard key of its own node only, not of n2") {
		t.Errorf("n1's agent writing n2's next key: %v", err)
	}
	if err := publishNext("n2", "n2", key(2), key(22), false); err != nil {
		t.Errorf("the agent on n2 publishing its own next key: %v", err)
	}
	if err := host.Get(ctx, client.ObjectKey{Name: "n2"}, &nc); err != nil || nc.Status.WireGuard == nil || nc.Status.WireGuard.NextPublicKey != key(22) {
		t.Errorf("n2's status after its own rotation started %+v, %v", nc.Status.WireGuard, err)
	}
}
