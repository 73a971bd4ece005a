package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Source is where the topology comes from: a file (FileSource) or a
// KosmosTopology object in the host cluster (ObjectSource).
type Source interface {
	// Watch calls fire whenever the topology may have changed, until ctx
	// ends.
	Watch(ctx context.Context, fire func(), log *slog.Logger) error
	// Read returns the current topology, or the problems that reject it.
	// version identifies the document: equal versions, equal topologies.
	Read(ctx context.Context) (t *v1alpha1.KosmosTopology, version string, err error)
	// Report publishes an outcome where users look for it (the object's
	// status and events). A file has nowhere to publish but the logs.
	Report(ctx context.Context, o Outcome) error
	// Release lets the topology go once everything Kosmos wrote for it is
	// pruned (a deleted object's finalizer is removed).
	Release(ctx context.Context) error
	// String names the source in logs.
	String() string
}

// ErrGone says the topology no longer exists (its object was deleted and
// released): there is nothing to reconcile.
var ErrGone = errors.New("the topology is gone")

// Outcome is what the controller made of the current document.
type Outcome struct {
	// Version of the document read (see Source.Read).
	Version string
	// Rejected holds the problems of a document that was not accepted; the
	// last good topology stays in force.
	Rejected error
	// Progressing is set while a pass of this document is under way.
	Progressing bool
	// Pass is the last finished pass of the topology in force, if any.
	Pass *Report
	// PassErr joins the clusters' errors of that pass.
	PassErr error
}

// FileSource reads the topology from a file and follows it, including the
// atomic symlink swap of a mounted ConfigMap and a git-sync checkout.
type FileSource struct{ Path string }

func (s FileSource) String() string { return s.Path }

// Read loads and validates the file; version is its content. A file over
// schema.MaxFileSize is refused without reading more than the limit.
func (s FileSource) Read(context.Context) (*v1alpha1.KosmosTopology, string, error) {
	data, err := schema.ReadTopologyFile(s.Path)
	if err != nil {
		return nil, "", err
	}
	t, err := schema.Load(s.Path, data)
	return t, string(data), err
}

// Report has nowhere to write beside the controller's logs and metrics.
func (FileSource) Report(context.Context, Outcome) error { return nil }

// Release has nothing to release: a file is taken out with
// `kosmos apply --prune-all`.
func (FileSource) Release(context.Context) error { return nil }

// Watch fires on any change in the file's directory: a ConfigMap's ..data
// swap or git-sync's link replace the file without touching it.
func (s FileSource) Watch(ctx context.Context, fire func(), log *slog.Logger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.Path, err)
	}
	dir := filepath.Dir(s.Path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				fire()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Error("file watch", "err", err)
			}
		}
	}()
	return nil
}

// ObjectSource follows a KosmosTopology object in the host cluster, the way
// Argo CD or Flux deliver it, and keeps its status kstatus-compatible:
// observedGeneration and the conditions Ready, Reconciling and Stalled.
type ObjectSource struct {
	Client          client.WithWatch
	Namespace, Name string
	// Events, when set, records events on the object (rejections, clusters
	// failing, objects written).
	Events EventRecorder
}

// EventRecorder is the part of client-go's record.EventRecorder used here.
type EventRecorder interface {
	Event(object runtime.Object, eventtype, reason, message string)
}

// NewEventRecorder records events through the API server behind cfg as
// component; stop flushes and ends it.
func NewEventRecorder(cfg *rest.Config, component string) (rec EventRecorder, stop func(), err error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, nil, err
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return b.NewRecorder(scheme, corev1.EventSource{Component: component}), b.Shutdown, nil
}

func (s *ObjectSource) String() string {
	return fmt.Sprintf("kosmostopology/%s/%s", s.Namespace, s.Name)
}

// Read gets the object and validates it as the file loader does (the API
// server's schema already refused what it could). version is uid/generation,
// so status writes do not count as changes. A live object gets the cleanup
// finalizer, so deleting it prunes what Kosmos wrote before it goes; a
// deleted one comes back with its DeletionTimestamp set. An object that does
// not exist is ErrGone.
func (s *ObjectSource) Read(ctx context.Context) (*v1alpha1.KosmosTopology, string, error) {
	var obj v1alpha1.KosmosTopology
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", fmt.Errorf("%s not found: %w", s, ErrGone)
		}
		return nil, "", fmt.Errorf("get %s: %w", s, err)
	}
	if obj.DeletionTimestamp == nil && !slices.Contains(obj.Finalizers, v1alpha1.FinalizerCleanup) {
		before := obj.DeepCopy()
		obj.Finalizers = append(obj.Finalizers, v1alpha1.FinalizerCleanup)
		if err := s.Client.Patch(ctx, &obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return nil, "", fmt.Errorf("add finalizer %s to %s: %w", v1alpha1.FinalizerCleanup, s, err)
		}
	}
	t, err := validateObject(s.String(), &obj)
	return t, objectVersion(&obj), err
}

// Release removes the cleanup finalizer of a deleted object.
func (s *ObjectSource) Release(ctx context.Context) error {
	var obj v1alpha1.KosmosTopology
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !slices.Contains(obj.Finalizers, v1alpha1.FinalizerCleanup) {
		return nil
	}
	before := obj.DeepCopy()
	obj.Finalizers = slices.DeleteFunc(obj.Finalizers, func(f string) bool { return f == v1alpha1.FinalizerCleanup })
	if err := s.Client.Patch(ctx, &obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("remove finalizer %s from %s: %w", v1alpha1.FinalizerCleanup, s, err)
	}
	return nil
}

// objectVersion identifies what a pass reads of a topology object:
// uid/generation (status writes leave it alone), whether it is being
// deleted, and the annotations that steer prune (confirmations and clusters
// to forget, which change no generation).
func objectVersion(o *v1alpha1.KosmosTopology) string {
	v := fmt.Sprintf("%s/%d", o.UID, o.Generation)
	if o.DeletionTimestamp != nil {
		v += "/deleting"
	}
	for _, a := range []string{v1alpha1.AnnotationConfirmDeletions, v1alpha1.AnnotationForgetClusters} {
		if val, ok := o.Annotations[a]; ok {
			v += "/" + a + "=" + val
		}
	}
	return v
}

// validateObject runs the loader over the object's spec, so an object and a
// file are judged by the same rules. Problems carry the field path only: the
// object has no lines of its own.
func validateObject(name string, obj *v1alpha1.KosmosTopology) (*v1alpha1.KosmosTopology, error) {
	doc := v1alpha1.KosmosTopology{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindKosmosTopology},
		ObjectMeta: metav1.ObjectMeta{Name: obj.Name, Namespace: obj.Namespace, Labels: obj.Labels},
		Spec:       obj.Spec,
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	t, err := schema.Load(name, data)
	var ps schema.Problems
	if errors.As(err, &ps) {
		for i := range ps {
			ps[i].Line, ps[i].Col = 0, 0
		}
		return nil, ps
	}
	if err != nil {
		return nil, err
	}
	t.ObjectMeta = *obj.ObjectMeta.DeepCopy()
	return t, nil
}

// Watch fires on every event of the object, restarting the watch when the
// server ends it.
func (s *ObjectSource) Watch(ctx context.Context, fire func(), log *slog.Logger) error {
	go func() {
		for ctx.Err() == nil {
			w, err := s.Client.Watch(ctx, &v1alpha1.KosmosTopologyList{}, client.InNamespace(s.Namespace),
				client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", s.Name)})
			if err != nil {
				log.Error("topology watch", "source", s.String(), "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
				continue
			}
			for range w.ResultChan() {
				fire()
			}
			w.Stop()
		}
	}()
	return nil
}

// Report writes the outcome into the object's status when it differs, and
// records events for rejections, failing clusters and writes.
func (s *ObjectSource) Report(ctx context.Context, o Outcome) error {
	var obj v1alpha1.KosmosTopology
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if objectVersion(&obj) != o.Version {
		return nil // a newer generation arrived; its own outcome follows
	}
	before := obj.DeepCopy()
	SetTopologyStatus(&obj.Status, obj.Generation, o, metav1.Now())
	if statusEqual(before.Status, obj.Status) {
		return nil
	}
	if err := s.Client.Status().Patch(ctx, &obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("status of %s: %w", s, err)
	}
	if s.Events != nil {
		s.recordEvents(&obj, o)
	}
	return nil
}

func (s *ObjectSource) recordEvents(obj *v1alpha1.KosmosTopology, o Outcome) {
	const max = 1000 // events are for people; the status holds the rest
	trim := func(m string) string {
		if len(m) > max {
			return m[:max] + "…"
		}
		return m
	}
	switch {
	case o.Rejected != nil:
		s.Events.Event(obj, "Warning", ReasonInvalid, trim("topology rejected, the last good one stays in force:\n"+o.Rejected.Error()))
	case o.Progressing || o.Pass == nil:
	case o.PassErr != nil:
		s.Events.Event(obj, "Warning", ReasonClustersFailing, trim(o.PassErr.Error()))
	default:
		var parts []string
		for _, c := range o.Pass.Clusters {
			if w := c.Result.Writes(); w > 0 {
				parts = append(parts, fmt.Sprintf("%s: %d created, %d updated, %d pruned", c.Name, len(c.Result.Created), len(c.Result.Updated), len(c.Result.Pruned)))
			}
		}
		if len(parts) > 0 {
			s.Events.Event(obj, "Normal", ReasonReconciled, trim(strings.Join(parts, "; ")))
		}
	}
}
