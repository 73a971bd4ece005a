package tree_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hostaccess "kosmos.io/kosmos/kustomize/base/host-access"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/translate"
)

// shippedTreeIdentity makes the tree reach member cluster name as a
// deployment does: with a token of the kosmos-host-tree ServiceAccount
// and exactly the rights kustomize/base/host-access/rbac.yaml gives it.
// Call it before w.run.
func shippedTreeIdentity(ctx context.Context, t *testing.T, w *world, name string) {
	t.Helper()
	admin := w.env.Cluster(name).Config
	c, err := client.New(admin, client.Options{})
	must(t, err)
	objs := []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "kosmos-system"}}}}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(hostaccess.RBAC), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kustomize/base/host-access/rbac.yaml: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	for _, u := range objs {
		if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s %s in %s: %v", u.GetKind(), u.GetName(), name, err)
		}
	}
	exp := int64(3600)
	tr, err := w.members[name].CoreV1().ServiceAccounts("kosmos-system").CreateToken(ctx, hostaccess.TreeAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	must(t, err)
	kc, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{name: {Server: admin.Host, CertificateAuthorityData: admin.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"tree": {Token: tr.Status.Token}},
		Contexts:       map[string]*clientcmdapi.Context{name: {Cluster: name, AuthInfo: "tree"}},
		CurrentContext: name,
	})
	must(t, err)
	sec, err := w.hostCS.CoreV1().Secrets("kosmos-system").Get(ctx, "kubeconfig-"+name, metav1.GetOptions{})
	must(t, err)
	sec.Data["kubeconfig"] = kc
	_, err = w.hostCS.CoreV1().Secrets("kosmos-system").Update(ctx, sec, metav1.UpdateOptions{})
	must(t, err)
}

// claimScene is a host namespace shop whose claims pods use on member
// cluster member-a's virtual node, with storage class class in both
// clusters (expandable in the member only when expand).
type claimScene struct {
	ctx   context.Context
	h, ma kubernetes.Interface
	class string
}

func newClaimScene(ctx context.Context, t *testing.T, w *world, class string, expand bool) *claimScene {
	t.Helper()
	s := &claimScene{ctx: ctx, h: w.hostCS, ma: w.members["member-a"], class: class}
	yes := true
	_, err := s.h.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: "example.com/" + class, AllowVolumeExpansion: &yes}, metav1.CreateOptions{})
	must(t, err)
	_, err = s.ma.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: "example.com/" + class, AllowVolumeExpansion: &expand}, metav1.CreateOptions{})
	must(t, err)
	_, err = s.h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{tree.LabelTreeTokens: tree.TreeTokensEnabled}}}, metav1.CreateOptions{})
	must(t, err)
	_, err = s.h.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	must(t, err)
	return s
}

// claim is a host claim of the scene's class.
func (s *claimScene) claim(name, size string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: &s.class,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}}}
}

// bound creates host claim name (1Gi) and pod on the virtual node using
// it, plays the member's provisioner (volume pv on a1, 1Gi, bound to the
// tree's copy) and waits until the host claim is bound.
func (s *claimScene) bound(t *testing.T, name, pod, pv string) (hc, mc *corev1.PersistentVolumeClaim) {
	t.Helper()
	ctx, h, ma := s.ctx, s.h, s.ma
	_, err := h.CoreV1().PersistentVolumeClaims("shop").Create(ctx, s.claim(name, "1Gi"), metav1.CreateOptions{})
	must(t, err)
	waitFor(t, "the virtual node", wantReady(ctx, h, "kosmos-member-a", corev1.ConditionTrue))
	p := hostPod("shop", pod, "kosmos-member-a")
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}})
	_, err = h.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
	must(t, err)
	waitFor(t, "the claim in the member", func() error {
		mc, err = ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, name, metav1.GetOptions{})
		return err
	})
	_, err = ma.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pv}, Spec: corev1.PersistentVolumeSpec{
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}, StorageClassName: s.class,
		AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
		ClaimRef:                      &corev1.ObjectReference{Namespace: "shop", Name: name, UID: mc.UID},
		PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/member/" + pv}},
	}}, metav1.CreateOptions{})
	must(t, err)
	mc.Spec.VolumeName = pv
	mc, err = ma.CoreV1().PersistentVolumeClaims("shop").Update(ctx, mc, metav1.UpdateOptions{})
	must(t, err)
	mc.Status.Phase, mc.Status.Capacity = corev1.ClaimBound, corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	mc.Status.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	mc, err = ma.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, mc, metav1.UpdateOptions{})
	must(t, err)
	waitFor(t, "the host claim bound", func() error {
		hc, err = h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, name, metav1.GetOptions{})
		if err == nil && hc.Status.Phase != corev1.ClaimBound {
			return fmt.Errorf("host claim %s", hc.Status.Phase)
		}
		return err
	})
	return hc, mc
}

// grow asks for size on host claim c.
func (s *claimScene) grow(t *testing.T, c *corev1.PersistentVolumeClaim, size string) *corev1.PersistentVolumeClaim {
	t.Helper()
	c = c.DeepCopy()
	c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
	c, err := s.h.CoreV1().PersistentVolumeClaims("shop").Update(s.ctx, c, metav1.UpdateOptions{})
	must(t, err)
	return c
}

// TestClaimResizeRefused, on real control planes: the member's storage
// class does not allow expansion, so its API server refuses to resize the
// tree's copy of a grown host claim. The host claim gets a
// ClaimResizeRefused event saying why, and the rest still follows: the
// member volume's and claim's later changes show on the host's reflected
// volume and claim.
func TestClaimResizeRefused(t *testing.T) {
	w := newWorld(t, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	s := newClaimScene(ctx, t, w, "fixed", false)
	memberNodeObj(ctx, t, s.ma, "a1", "4")
	w.run(10 * time.Second)
	hc, mc := s.bound(t, "data", "db-0", "pvc-a1-1")

	s.grow(t, hc, "3Gi")
	waitFor(t, "the ClaimResizeRefused event on the host claim", func() error {
		evs, err := s.h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=PersistentVolumeClaim,involvedObject.name=data"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == tree.ReasonClaimResizeRefused && strings.Contains(e.Message, "member-a") {
				t.Logf("event: %s", e.Message)
				return nil
			}
		}
		return fmt.Errorf("%d events on the claim, none %s", len(evs.Items), tree.ReasonClaimResizeRefused)
	})
	got, err := s.ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
	must(t, err)
	if q := got.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "1Gi" {
		t.Errorf("member claim asks for %s after a refused resize", q.String())
	}

	// The member's administrator grows the volume by hand: the host shows it.
	pv, err := s.ma.CoreV1().PersistentVolumes().Get(ctx, "pvc-a1-1", metav1.GetOptions{})
	must(t, err)
	pv.Spec.Capacity[corev1.ResourceStorage] = resource.MustParse("2Gi")
	_, err = s.ma.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
	must(t, err)
	mc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}
	_, err = s.ma.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, mc, metav1.UpdateOptions{})
	must(t, err)
	waitFor(t, "host volume and claim at 2Gi", func() error {
		hpv, err := s.h.CoreV1().PersistentVolumes().Get(ctx, "kosmos-member-a.pvc-a1-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c, err := s.h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if hpv.Spec.Capacity.Storage().String() != "2Gi" || c.Status.Capacity.Storage().String() != "2Gi" {
			return fmt.Errorf("host volume %v, host claim %v", hpv.Spec.Capacity, c.Status.Capacity)
		}
		return nil
	})
}

// TestClaimRecreatedHostClaim, on real control planes: a host claim
// deleted and recreated under its name while the tree was away is not the
// source of the member claim copied from the old one. The old copy is
// collected, neither resized for the new claim nor bound to it.
func TestClaimRecreatedHostClaim(t *testing.T) {
	w := newWorld(t, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	s := newClaimScene(ctx, t, w, "fast", true)
	memberNodeObj(ctx, t, s.ma, "a1", "4")
	w.run(10 * time.Second)
	hc, mc := s.bound(t, "data", "db-0", "pvc-a1-1")
	if got := mc.Annotations[translate.AnnotationHostClaimUID]; got != string(hc.UID) {
		t.Fatalf("member claim names host claim UID %q, want %q", got, hc.UID)
	}

	w.stop()
	zero := int64(0)
	must(t, s.h.CoreV1().Pods("shop").Delete(ctx, "db-0", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	must(t, s.h.CoreV1().PersistentVolumeClaims("shop").Delete(ctx, "data", metav1.DeleteOptions{}))
	// No controller-manager releases pvc-protection here: the test does.
	waitFor(t, "the old host claim gone", func() error {
		c, err := s.h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		c.Finalizers = nil
		if _, err := s.h.CoreV1().PersistentVolumeClaims("shop").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
			return err
		}
		return fmt.Errorf("still there")
	})
	_, err := s.h.CoreV1().PersistentVolumeClaims("shop").Create(ctx, s.claim("data", "5Gi"), metav1.CreateOptions{})
	must(t, err)

	w.run(10 * time.Second)
	waitFor(t, "the old copy collected", deleted(func() (metav1.Object, error) {
		return s.ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
	}))
	w.awaitPasses(t, 3)
	old, err := s.ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
	if err == nil && old.UID == mc.UID {
		if q := old.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "1Gi" {
			t.Errorf("the old copy was resized to %s for the new host claim", q.String())
		}
	}
	nc, err := s.h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
	must(t, err)
	if nc.Spec.VolumeName != "" || nc.Status.Phase == corev1.ClaimBound {
		t.Errorf("the new host claim was bound to %q (%s), the old copy's volume", nc.Spec.VolumeName, nc.Status.Phase)
	}
}
