package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// The sandbox's dynamic provisioner: every member cluster (not the host)
// gets two StorageClasses of ProvisionerName, one WaitForFirstConsumer
// (StorageClassWFFC) and one Immediate (StorageClassImmediate), and a
// provisioner that makes host-path volumes for their claims under the
// sandbox's directory. It acts as an external provisioner does: it
// creates a volume pre-bound to the claim (claimRef with its UID), and the
// cluster's kube-controller-manager binds the claim to it; a released
// volume of reclaim policy Delete is removed, its directory too.
//
// Where a claim's volume lives: the claim's volume.kubernetes.io/selected-node
// annotation when a scheduler set it; for WaitForFirstConsumer without it,
// the machine of a pod that mounts the claim and is bound (the sandbox's
// simulated scheduler does not set the annotation). An Immediate volume
// is pinned to no machine: the simulated machines share this machine's
// disk, and pinning it before any consumer is known (as a local volume
// would be) could part it from the pod's other volumes. The host gets no class: its claims are served by
// the members through the tree (KosmosVolumeBinding, translate.HostPV).
const (
	ProvisionerName       = "kosmos.io/sandbox-hostpath"
	StorageClassWFFC      = "sandbox-hostpath"
	StorageClassImmediate = "sandbox-hostpath-immediate"

	annSelectedNode  = "volume.kubernetes.io/selected-node"
	annProvisionedBy = "pv.kubernetes.io/provisioned-by"
)

// storageClasses are the classes the sandbox installs in a member.
func storageClasses() []*storagev1.StorageClass {
	wffc, immediate := storagev1.VolumeBindingWaitForFirstConsumer, storagev1.VolumeBindingImmediate
	del := corev1.PersistentVolumeReclaimDelete
	return []*storagev1.StorageClass{
		{ObjectMeta: metav1.ObjectMeta{Name: StorageClassWFFC}, Provisioner: ProvisionerName, VolumeBindingMode: &wffc, ReclaimPolicy: &del},
		{ObjectMeta: metav1.ObjectMeta{Name: StorageClassImmediate}, Provisioner: ProvisionerName, VolumeBindingMode: &immediate, ReclaimPolicy: &del},
	}
}

// provisionNode decides the machine of claim c's volume: a node name, or
// "" for none (Immediate), and ok false with a reason when it cannot be
// made yet. pods are the cluster's pods.
func provisionNode(c *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, pods []*corev1.Pod) (node string, ok bool, why string) {
	if n := c.Annotations[annSelectedNode]; n != "" {
		return n, true, ""
	}
	if class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
		for _, p := range pods {
			if p.Namespace != c.Namespace || p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
				continue
			}
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == c.Name {
					return p.Spec.NodeName, true, ""
				}
			}
		}
		return "", false, "waiting for a consumer bound to a node"
	}
	return "", true, ""
}

// volumeFor is the volume the provisioner makes for claim c under dir,
// pinned to node unless it is "".
func volumeFor(c *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node, dir string) *corev1.PersistentVolume {
	name := "pvc-" + string(c.UID)
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	hostPath := corev1.HostPathDirectoryOrCreate
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: ProvisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    c.Spec.VolumeMode,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name, UID: c.UID},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(dir, name), Type: &hostPath}},
		},
	}
	if node != "" {
		v.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}}}
	}
	return v
}

// provisioner runs the sandbox's provisioner for one cluster.
type provisioner struct {
	cluster string
	cs      kubernetes.Interface
	dir     string // volumes live under it
	log     *slog.Logger
}

// run installs the classes and provisions until ctx ends: every change of
// a claim, volume, pod or class starts a pass over all claims and volumes.
func (p *provisioner) run(ctx context.Context) {
	for _, c := range storageClasses() {
		if _, err := p.cs.StorageV1().StorageClasses().Create(ctx, c, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			p.log.Warn("sandbox storage class", "cluster", p.cluster, "class", c.Name, "err", err)
		}
	}
	f := informers.NewSharedInformerFactory(p.cs, 0)
	kick := make(chan struct{}, 1)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify(kick) },
		UpdateFunc: func(any, any) { notify(kick) },
		DeleteFunc: func(any) { notify(kick) },
	}
	claims, pvs, pods := f.Core().V1().PersistentVolumeClaims(), f.Core().V1().PersistentVolumes(), f.Core().V1().Pods()
	classes := f.Storage().V1().StorageClasses()
	for _, inf := range []cache.SharedIndexInformer{claims.Informer(), pvs.Informer(), pods.Informer(), classes.Informer()} {
		_, _ = inf.AddEventHandler(h)
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	f.WaitForCacheSync(ctx.Done())
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-time.After(5 * time.Second): // retry what failed
		}
		if err := p.pass(ctx, claims.Lister(), pvs.Lister(), pods.Lister(), classes.Lister()); err != nil && ctx.Err() == nil {
			p.log.Warn("sandbox provisioner", "cluster", p.cluster, "err", err)
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// pass provisions every claim of the sandbox's classes that has no
// volume, and removes released volumes of reclaim policy Delete.
func (p *provisioner) pass(ctx context.Context, claims interface {
	List(labels.Selector) ([]*corev1.PersistentVolumeClaim, error)
}, pvs interface {
	List(labels.Selector) ([]*corev1.PersistentVolume, error)
}, pods interface {
	List(labels.Selector) ([]*corev1.Pod, error)
}, classes interface {
	Get(string) (*storagev1.StorageClass, error)
}) error {
	allPods, _ := pods.List(labels.Everything())
	volumes, _ := pvs.List(labels.Everything())
	made := map[string]bool{}
	var errs []error
	for _, v := range volumes {
		made[v.Name] = true
		if v.Annotations[annProvisionedBy] == ProvisionerName && v.Status.Phase == corev1.VolumeReleased &&
			v.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete && v.DeletionTimestamp == nil {
			errs = append(errs, p.remove(ctx, v))
		}
	}
	all, _ := claims.List(labels.Everything())
	for _, c := range all {
		if c.Spec.VolumeName != "" || c.DeletionTimestamp != nil || c.Spec.StorageClassName == nil || made["pvc-"+string(c.UID)] {
			continue
		}
		class, err := classes.Get(*c.Spec.StorageClassName)
		if err != nil || class.Provisioner != ProvisionerName {
			continue
		}
		node, ok, _ := provisionNode(c, class, allPods)
		if !ok {
			continue
		}
		v := volumeFor(c, class, node, p.dir)
		if err := os.MkdirAll(v.Spec.HostPath.Path, 0o700); err != nil {
			errs = append(errs, fmt.Errorf("volume %s for claim %s/%s: %w", v.Name, c.Namespace, c.Name, err))
			continue
		}
		if _, err := p.cs.CoreV1().PersistentVolumes().Create(ctx, v, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("volume %s for claim %s/%s: %w", v.Name, c.Namespace, c.Name, err))
			continue
		}
		p.log.Info("volume provisioned", "cluster", p.cluster, "claim", c.Namespace+"/"+c.Name, "volume", v.Name, "node", node)
	}
	return errors.Join(errs...)
}

// remove deletes a released volume (UID precondition) and its directory.
func (p *provisioner) remove(ctx context.Context, v *corev1.PersistentVolume) error {
	if v.Spec.HostPath != nil && strings.HasPrefix(v.Spec.HostPath.Path, p.dir+string(filepath.Separator)) {
		if err := os.RemoveAll(v.Spec.HostPath.Path); err != nil {
			return fmt.Errorf("directory of volume %s: %w", v.Name, err)
		}
	}
	uid := v.UID
	err := p.cs.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete volume %s: %w", v.Name, err)
	}
	return nil
}
