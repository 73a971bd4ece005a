package tree_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/translate"
)

// TestMemberWithoutDaemonSetRights: a member whose Kosmos identity may
// not touch DaemonSets (a host-access RBAC older than DaemonSets in
// members) still syncs its pods; an opted-in DaemonSet gets an event
// saying what the member denies.
func TestMemberWithoutDaemonSetRights(t *testing.T) {
	a := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}}
	w := newWorld(t, nil, a)
	ctx := context.Background()
	h, m := w.hostCS, w.members["member-a"]
	memberNodeObj(ctx, t, m, "a1", "4")

	// The member's identity: every core resource, nothing of apps.
	_, err := m.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-system"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = m.CoreV1().ServiceAccounts("kosmos-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "old-tree"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = m.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "old-tree"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"*"}, Verbs: []string{"*"}}}}, metav1.CreateOptions{})
	must(t, err)
	_, err = m.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "old-tree"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "old-tree"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "kosmos-system", Name: "old-tree"}}}, metav1.CreateOptions{})
	must(t, err)
	exp := int64(3600)
	tr, err := m.CoreV1().ServiceAccounts("kosmos-system").CreateToken(ctx, "old-tree", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	must(t, err)
	admin := w.env.Cluster("member-a").Config
	kc, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"member-a": {Server: admin.Host, CertificateAuthorityData: admin.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"kosmos": {Token: tr.Status.Token}},
		Contexts:       map[string]*clientcmdapi.Context{"member-a": {Cluster: "member-a", AuthInfo: "kosmos"}},
		CurrentContext: "member-a",
	})
	must(t, err)
	sec, err := h.CoreV1().Secrets("kosmos-system").Get(ctx, "kubeconfig-member-a", metav1.GetOptions{})
	must(t, err)
	sec.Data["kubeconfig"] = kc
	_, err = h.CoreV1().Secrets("kosmos-system").Update(ctx, sec, metav1.UpdateOptions{})
	must(t, err)

	_, err = h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ops",
		Labels: map[string]string{translate.LabelMemberDaemonSets: translate.MemberDaemonSetsEnabled}}}, metav1.CreateOptions{})
	must(t, err)
	no := false
	sel := map[string]string{"app": "agent"}
	_, err = h.AppsV1().DaemonSets("ops").Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "agent", Annotations: map[string]string{translate.AnnotationMemberDaemonSet: "true"}},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: sel}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: sel},
			Spec:       corev1.PodSpec{AutomountServiceAccountToken: &no, Containers: []corev1.Container{{Name: "agent", Image: "ops/agent:1"}}}}}}, metav1.CreateOptions{})
	must(t, err)

	w.run(2 * time.Second)
	start := time.Now()
	waitFor(t, "virtual node Ready", wantReady(ctx, h, "kosmos-member-a", corev1.ConditionTrue))
	p := hostPod("ops", "web-1", "kosmos-member-a")
	p.Spec.AutomountServiceAccountToken, p.Spec.Volumes, p.Spec.Containers[0].VolumeMounts = &no, nil, nil
	_, err = h.CoreV1().Pods("ops").Create(ctx, p, metav1.CreateOptions{})
	must(t, err)
	waitFor(t, "web-1 copied into member-a", func() error {
		_, err := m.CoreV1().Pods("ops").Get(ctx, "web-1", metav1.GetOptions{})
		return err
	})
	t.Logf("pod synced %v after start, with no DaemonSet rights in the member", time.Since(start).Round(time.Millisecond))
	waitFor(t, "the event on agent", func() error {
		evs, err := h.CoreV1().Events("ops").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=agent"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == tree.ReasonDaemonSetRefused && strings.Contains(e.Message, "may not") && strings.Contains(e.Message, "host-access RBAC") {
				t.Logf("event: %s", e.Message)
				return nil
			}
		}
		return fmt.Errorf("%d events, none %s", len(evs.Items), tree.ReasonDaemonSetRefused)
	})
}
