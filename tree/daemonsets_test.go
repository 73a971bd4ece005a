package tree_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/translate"
)

// TestDaemonSetsInMembers: a DaemonSet pod bound to a virtual node is not
// copied and gets an event saying how to opt in; an opted-in DaemonSet
// runs in every member as the tree's DaemonSet (its ConfigMap copied
// too), the members' counts (the test plays their DaemonSet controllers)
// are summed back into the host DaemonSet, and deleting it deletes them.
func TestDaemonSetsInMembers(t *testing.T) {
	a := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}}
	b := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-b"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}}
	w := newWorld(t, nil, a, b)
	ctx := context.Background()
	h := w.hostCS
	memberNodeObj(ctx, t, w.members["member-a"], "a1", "4")
	memberNodeObj(ctx, t, w.members["member-a"], "a2", "4")
	memberNodeObj(ctx, t, w.members["member-b"], "b1", "4")
	var passErr atomic.Value // errBox: the last pass's error
	w.run(2*time.Second, func(c *tree.Controller) {
		on := c.OnPass
		c.OnPass = func(err error) { passErr.Store(errBox{err}); on(err) }
	})
	step := steps(t)
	// ops is opted in by its admin and enforces Pod Security baseline;
	// tenant is not opted in.
	_, err := h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ops", Labels: map[string]string{
		translate.LabelMemberDaemonSets: translate.MemberDaemonSetsEnabled, translate.PodSecurityLabelPrefix + "enforce": "baseline"}}}, metav1.CreateOptions{})
	must(t, err)
	_, err = h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = h.CoreV1().ConfigMaps("ops").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "agent-config"}, Data: map[string]string{"level": "info"}}, metav1.CreateOptions{})
	must(t, err)
	daemonSet := func(name string, optIn bool, adjust ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
		sel := map[string]string{"app": name}
		no := false
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: name}, Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: corev1.PodSpec{
				AutomountServiceAccountToken: &no,
				Containers: []corev1.Container{{Name: "agent", Image: "ops/agent:1",
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "agent-config"}}}}}}}}}}
		if optIn {
			ds.Annotations = map[string]string{translate.AnnotationMemberDaemonSet: "true"}
		}
		for _, f := range adjust {
			f(ds)
		}
		ds, err := h.AppsV1().DaemonSets(ds.Namespace).Create(ctx, ds, metav1.CreateOptions{})
		must(t, err)
		return ds
	}

	step("a DaemonSet pod on a virtual node gets an event and no copy", func(t *testing.T) {
		waitFor(t, "virtual nodes Ready", func() error {
			for _, n := range []string{"kosmos-member-a", "kosmos-member-b"} {
				if err := wantReady(ctx, h, n, corev1.ConditionTrue)(); err != nil {
					return err
				}
			}
			return nil
		})
		ds := daemonSet("plain", false)
		yes := true
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "plain-x",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: &yes}}},
			Spec: *ds.Spec.Template.Spec.DeepCopy()}
		p.Spec.NodeName = "kosmos-member-a"
		_, err := h.CoreV1().Pods("ops").Create(ctx, p, metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "the event on plain-x", func() error {
			evs, err := h.CoreV1().Events("ops").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=plain-x"})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.Reason == tree.ReasonDaemonSetPod && strings.Contains(e.Message, translate.AnnotationMemberDaemonSet) {
					t.Logf("event: %s", e.Message)
					return nil
				}
			}
			return fmt.Errorf("%d events, none %s", len(evs.Items), tree.ReasonDaemonSetPod)
		})
		w.awaitPasses(t, 2)
		if _, err := w.members["member-a"].CoreV1().Pods("ops").Get(ctx, "plain-x", metav1.GetOptions{}); err == nil {
			t.Error("the DaemonSet pod was copied into member-a")
		}
		if _, err := w.members["member-a"].AppsV1().DaemonSets("ops").Get(ctx, "plain", metav1.GetOptions{}); err == nil {
			t.Error("a DaemonSet without the annotation runs in member-a")
		}
	})

	notAdmitted := func(t *testing.T, ns, name, want string) {
		t.Helper()
		waitFor(t, "the refusal of "+ns+"/"+name, func() error {
			evs, err := h.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.Reason == tree.ReasonDaemonSetNotAdmitted && strings.Contains(e.Message, want) {
					t.Logf("event: %s", e.Message)
					return nil
				}
			}
			return fmt.Errorf("%d events, none %s with %q", len(evs.Items), tree.ReasonDaemonSetNotAdmitted, want)
		})
		w.awaitPasses(t, 2)
		for mn, m := range w.members {
			if _, err := m.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				t.Errorf("%s/%s runs in %s", ns, name, mn)
			}
		}
	}

	step("an annotated DaemonSet of a namespace that did not opt in is not run", func(t *testing.T) {
		daemonSet("tenant-agent", true, func(ds *appsv1.DaemonSet) { ds.Namespace = "tenant" })
		notAdmitted(t, "tenant", "tenant-agent", "kubectl label namespace tenant "+translate.LabelMemberDaemonSets+"=enabled")
	})

	step("a privileged hostPath DaemonSet the host's Pod Security refuses is not run", func(t *testing.T) {
		yes := true
		daemonSet("root", true, func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
			ds.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
		})
		notAdmitted(t, "ops", "root", "dry run")
	})

	var host *appsv1.DaemonSet
	step("an annotated DaemonSet runs in every member, with its ConfigMap", func(t *testing.T) {
		host = daemonSet("agent", true)
		for name, m := range w.members {
			waitFor(t, "agent in "+name, func() error {
				ds, err := m.AppsV1().DaemonSets("ops").Get(ctx, "agent", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if ds.Labels[tree.LabelManagedBy] != tree.ManagedBy || ds.Annotations[translate.AnnotationHostDaemonSetUID] != string(host.UID) {
					return fmt.Errorf("marks %v %v", ds.Labels, ds.Annotations)
				}
				if ds.Spec.Template.Spec.ServiceAccountName != translate.MemberAccountName("default") {
					return fmt.Errorf("account %q", ds.Spec.Template.Spec.ServiceAccountName)
				}
				_, err = m.CoreV1().ConfigMaps("ops").Get(ctx, "agent-config", metav1.GetOptions{})
				return err
			})
			ns, err := m.CoreV1().Namespaces().Get(ctx, "ops", metav1.GetOptions{})
			must(t, err)
			if ns.Labels[translate.PodSecurityLabelPrefix+"enforce"] != "baseline" {
				t.Errorf("member %s namespace ops labels %v: no Pod Security level of the host's", name, ns.Labels)
			}
		}
	})

	step("a DaemonSet that fails in one member is an event there, not a failed pass", func(t *testing.T) {
		// member-a has a ConfigMap of its own under the name the template
		// reads: the tree refuses to run the DaemonSet on it there.
		_, err := w.members["member-a"].CoreV1().ConfigMaps("ops").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "node-config"}}, metav1.CreateOptions{})
		must(t, err)
		daemonSet("failing", true, func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "node-config"}}}}
		})
		waitFor(t, "the MemberDaemonSetFailed event", func() error {
			evs, err := h.CoreV1().Events("ops").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=failing"})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.Reason == tree.ReasonDaemonSetFailed {
					t.Logf("event: %s", e.Message)
					return nil
				}
			}
			return fmt.Errorf("%d events, none %s", len(evs.Items), tree.ReasonDaemonSetFailed)
		})
		waitFor(t, "failing runs in member-b", func() error {
			_, err := w.members["member-b"].AppsV1().DaemonSets("ops").Get(ctx, "failing", metav1.GetOptions{})
			return err
		})
		w.awaitPasses(t, 1)
		passErr.Store(errBox{})
		w.awaitPasses(t, 2)
		if b, _ := passErr.Load().(errBox); b.err != nil {
			t.Errorf("pass error: %v", b.err)
		}
		must(t, h.AppsV1().DaemonSets("ops").Delete(ctx, "failing", metav1.DeleteOptions{}))
	})

	step("the members' counts are summed into the host DaemonSet", func(t *testing.T) {
		// Each member's DaemonSet controller, played: one pod per node, ready.
		for name, nodes := range map[string]int32{"member-a": 2, "member-b": 1} {
			m := w.members[name]
			waitFor(t, "status of agent in "+name, func() error {
				ds, err := m.AppsV1().DaemonSets("ops").Get(ctx, "agent", metav1.GetOptions{})
				if err != nil {
					return err
				}
				ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: nodes, CurrentNumberScheduled: nodes, NumberReady: nodes,
					NumberAvailable: nodes, UpdatedNumberScheduled: nodes, ObservedGeneration: ds.Generation}
				_, err = m.AppsV1().DaemonSets("ops").UpdateStatus(ctx, ds, metav1.UpdateOptions{})
				return err
			})
		}
		waitFor(t, "the host DaemonSet counts 3 member pods", func() error {
			ds, err := h.AppsV1().DaemonSets("ops").Get(ctx, "agent", metav1.GetOptions{})
			if err != nil {
				return err
			}
			var sum translate.MemberDaemonSetStatus
			if err := json.Unmarshal([]byte(ds.Annotations[translate.AnnotationMemberDaemonSetStatus]), &sum); err != nil {
				return fmt.Errorf("annotation %q: %w", ds.Annotations[translate.AnnotationMemberDaemonSetStatus], err)
			}
			if sum.Desired != 3 || sum.Ready != 3 {
				return fmt.Errorf("sum %+v", sum)
			}
			for _, c := range ds.Status.Conditions {
				if c.Type == translate.ConditionMemberDaemonSets && c.Status == corev1.ConditionTrue {
					t.Logf("host condition: %s", c.Message)
					return nil
				}
			}
			return fmt.Errorf("conditions %+v", ds.Status.Conditions)
		})
	})

	step("a member DaemonSet with another selector is recreated (a selector is immutable)", func(t *testing.T) {
		m := w.members["member-a"]
		var stale *appsv1.DaemonSet
		waitFor(t, "a stale agent in member-a", func() error {
			have, err := m.AppsV1().DaemonSets("ops").Get(ctx, "agent", metav1.GetOptions{})
			if err != nil {
				return err
			}
			old := map[string]string{"app": "agent-old"}
			stale = have.DeepCopy()
			stale.ObjectMeta = metav1.ObjectMeta{Namespace: "ops", Name: "agent", Labels: have.Labels, Annotations: have.Annotations}
			stale.Spec.Selector, stale.Spec.Template.Labels, stale.Status = &metav1.LabelSelector{MatchLabels: old}, old, appsv1.DaemonSetStatus{}
			if err := m.AppsV1().DaemonSets("ops").Delete(ctx, "agent", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &have.UID}}); err != nil {
				return err
			}
			stale, err = m.AppsV1().DaemonSets("ops").Create(ctx, stale, metav1.CreateOptions{})
			return err
		})
		waitFor(t, "agent recreated with the host's selector", func() error {
			ds, err := m.AppsV1().DaemonSets("ops").Get(ctx, "agent", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ds.UID == stale.UID || ds.Spec.Selector.MatchLabels["app"] != "agent" {
				return fmt.Errorf("selector %v (uid %s, stale %s)", ds.Spec.Selector.MatchLabels, ds.UID, stale.UID)
			}
			return nil
		})
	})

	step("deleting the host DaemonSet deletes the members'", func(t *testing.T) {
		must(t, h.AppsV1().DaemonSets("ops").Delete(ctx, "agent", metav1.DeleteOptions{}))
		for name, m := range w.members {
			waitFor(t, "agent gone from "+name, deleted(func() (metav1.Object, error) {
				return m.AppsV1().DaemonSets("ops").Get(ctx, "agent", metav1.GetOptions{})
			}))
			waitFor(t, "agent-config collected in "+name, gone(func() error {
				_, err := m.CoreV1().ConfigMaps("ops").Get(ctx, "agent-config", metav1.GetOptions{})
				return err
			}))
		}
	})
}

// errBox holds an error (nil too) in an atomic.Value.
type errBox struct{ err error }
