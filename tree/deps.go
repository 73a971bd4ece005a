package tree

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"

	"kosmos.io/kosmos/tree/translate"
)

// Dependency copies in a member carry the managed-by label; a copy of a
// host object also names its source's resourceVersion, so an unchanged
// source costs no write.
const (
	// AnnotationSourceVersion is the host object's resourceVersion a copy
	// was made from.
	AnnotationSourceVersion = "kosmos.io/source-resource-version"
	// AnnotationTokenExpires is when the host token in a kosmos-sa-*
	// Secret expires (RFC 3339).
	AnnotationTokenExpires = "kosmos.io/token-expires"
	// AnnotationTokenPod names the host pod (in the Secret's namespace) a
	// token Secret's token is bound to; translate.AnnotationHostPodUID
	// holds its UID.
	AnnotationTokenPod = "kosmos.io/token-pod"
	// TokenLifetime is the lifetime asked for host ServiceAccount tokens;
	// they are renewed when a third of it is left.
	TokenLifetime = time.Hour
	// Queue keys of dependency copies are prefixed by their kind.
	keyConfigMap = "configmap:"
	keySecret    = "secret:"
)

// ownMeta is the metadata of a copy this sync creates.
func (m *memberSync) ownMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{LabelManagedBy: ManagedBy, translate.LabelOwner: m.owner}, Annotations: map[string]string{}}
}

// ensureDeps makes hp's namespace, ServiceAccount, host token (when
// token), ConfigMaps, Secrets and claims exist in the member. A host
// object that does not exist yet is left out (the member pod waits for it,
// as it would in the host) unless the member has one of that name it did
// not get from the host: then the pod is refused, for it would read the
// member's own data (errForeign).
func (m *memberSync) ensureDeps(ctx context.Context, hp *corev1.Pod, token bool) error {
	ns := hp.Namespace
	if err := m.ensureNamespace(ctx, ns); err != nil {
		return err
	}
	d := translate.DepsOf(hp)
	var errs []error
	for _, sa := range d.ServiceAccounts {
		errs = append(errs, m.ensureAccount(ctx, ns, translate.MemberAccountName(sa)))
	}
	if token {
		errs = append(errs, m.ensureToken(ctx, hp, false))
	}
	for _, n := range d.ConfigMaps {
		errs = append(errs, m.syncConfigMap(ctx, ns, n))
	}
	for _, n := range d.Secrets {
		errs = append(errs, m.syncSecret(ctx, ns, n))
	}
	for _, n := range d.PVCs {
		errs = append(errs, m.ensureClaim(ctx, ns, n))
	}
	return errors.Join(errs...)
}

// ensureNamespace makes namespace ns exist in the member. One the tree
// creates carries the host namespace's Pod Security labels, kept in step
// (translate.PodSecurityLabels); a namespace the tree did not create is
// never changed.
func (m *memberSync) ensureNamespace(ctx context.Context, ns string) error {
	var hostLabels map[string]string
	if h, err := m.ctl.hostNamespaces.Get(ns); err == nil {
		hostLabels = h.Labels
	}
	if have, err := m.namespaces.Get(ns); err == nil {
		if !m.isOwn(have.Labels) {
			return nil
		}
		l, changed := translate.PodSecurityLabels(hostLabels, have.Labels)
		if !changed {
			return nil
		}
		up := have.DeepCopy()
		up.Labels = l
		if _, err := m.cs.CoreV1().Namespaces().Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("namespace %s in member %s (Pod Security labels): %w", ns, m.name, err)
		}
		return nil
	}
	meta := m.ownMeta("", ns)
	meta.Labels, _ = translate.PodSecurityLabels(hostLabels, meta.Labels)
	_, err := m.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: meta}, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s in member %s: %w", ns, m.name, err)
	}
	return nil
}

// ensureAccount makes the tree's ServiceAccount sa (a MemberAccountName)
// exist in the member, for the copy to run under (the pod's admission
// wants it); its own token is never mounted. An account of that name the
// tree did not create is the member's: the pod is refused (errForeign)
// rather than run under it.
func (m *memberSync) ensureAccount(ctx context.Context, ns, sa string) error {
	if _, err := m.accounts.ServiceAccounts(ns).Get(sa); err == nil {
		return nil
	}
	f := false
	sas := m.cs.CoreV1().ServiceAccounts(ns)
	_, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: m.ownMeta(ns, sa), AutomountServiceAccountToken: &f}, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return m.foreign(ctx, "ServiceAccount", ns, sa, func() (metav1.Object, error) { return sas.Get(ctx, sa, metav1.GetOptions{}) })
	}
	if err != nil {
		return fmt.Errorf("service account %s/%s in member %s: %w", ns, sa, m.name, err)
	}
	return nil
}

// ensureToken writes the Secret that stands in for host pod hp's
// projected API token: a host token for its ServiceAccount bound to hp
// (it stops authenticating once hp is gone), the host's CA and the
// namespace. force renews it even when the copy is still fresh.
func (m *memberSync) ensureToken(ctx context.Context, hp *corev1.Pod, force bool) error {
	ns, name := hp.Namespace, translate.TokenSecretName(hp.UID)
	sa := translate.DepsOf(hp).ServiceAccounts[0]
	have, _ := m.secrets.Secrets(ns).Get(name)
	if have != nil && !force && !tokenDue(have, time.Now()) {
		return nil
	}
	if err := m.ctl.checkTokenNamespace(ctx, ns); err != nil {
		return fmt.Errorf("token of host service account %s/%s: %w", ns, sa, err)
	}
	exp := int64(TokenLifetime.Seconds())
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp,
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: hp.Name, UID: hp.UID}}}
	tr, err := m.ctl.hostCS.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token of host service account %s/%s for pod %s: %w", ns, sa, hp.Name, err)
	}
	s := &corev1.Secret{ObjectMeta: m.ownMeta(ns, name), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{
		corev1.ServiceAccountTokenKey:     []byte(tr.Status.Token),
		corev1.ServiceAccountRootCAKey:    m.ctl.hostCA,
		corev1.ServiceAccountNamespaceKey: []byte(ns),
	}}
	s.Annotations[AnnotationTokenExpires] = tr.Status.ExpirationTimestamp.UTC().Format(time.RFC3339)
	s.Annotations[AnnotationTokenPod] = hp.Name
	s.Annotations[translate.AnnotationHostPodUID] = string(hp.UID)
	return m.writeSecret(ctx, s, have)
}

// renewToken renews token Secret s while the host pod it is bound to is
// still there and not terminating (then its copy is collected instead).
func (m *memberSync) renewToken(ctx context.Context, s *corev1.Secret) error {
	hp, err := m.ctl.hostPodLister.Pods(s.Namespace).Get(s.Annotations[AnnotationTokenPod])
	if err != nil || string(hp.UID) != s.Annotations[translate.AnnotationHostPodUID] || hp.DeletionTimestamp != nil {
		return nil
	}
	return m.ensureToken(ctx, hp, true)
}

// tokenDue tells whether a token Secret has a third of its life or less left.
func tokenDue(s *corev1.Secret, now time.Time) bool {
	exp, err := time.Parse(time.RFC3339, s.Annotations[AnnotationTokenExpires])
	return err != nil || exp.Sub(now) < TokenLifetime/3
}

// syncConfigMap makes the member's copy of host ConfigMap ns/name equal
// to it. A member ConfigMap the tree did not create is left alone.
func (m *memberSync) syncConfigMap(ctx context.Context, ns, name string) error {
	src, err := m.ctl.hostConfigMaps.ConfigMaps(ns).Get(name)
	if err != nil { // absent in the host: nothing to copy, and nothing of the member's to read
		if _, err := m.configMaps.ConfigMaps(ns).Get(name); err == nil {
			return nil // the tree's copy of a source since deleted: collected later
		}
		return m.foreign(ctx, "ConfigMap", ns, name, func() (metav1.Object, error) {
			return m.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		})
	}
	have, _ := m.configMaps.ConfigMaps(ns).Get(name)
	if have != nil && have.Annotations[AnnotationSourceVersion] == src.ResourceVersion {
		return nil
	}
	cm := &corev1.ConfigMap{ObjectMeta: m.ownMeta(ns, name), Data: src.Data, BinaryData: src.BinaryData, Immutable: src.Immutable}
	cm.Annotations[AnnotationSourceVersion] = src.ResourceVersion
	cms := m.cs.CoreV1().ConfigMaps(ns)
	if have == nil {
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return m.foreign(ctx, "ConfigMap", ns, name, func() (metav1.Object, error) { return cms.Get(ctx, name, metav1.GetOptions{}) })
		}
	} else {
		cm.ResourceVersion = have.ResourceVersion
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsInvalid(err) { // immutable: replace
			if err = cms.Delete(ctx, name, metav1.DeleteOptions{}); err == nil {
				return errRequeue
			}
		}
		err = raced(err)
	}
	if err != nil {
		return fmt.Errorf("ConfigMap %s/%s in member %s: %w", ns, name, m.name, err)
	}
	return nil
}

// syncSecret makes the member's copy of host Secret ns/name equal to it.
func (m *memberSync) syncSecret(ctx context.Context, ns, name string) error {
	src, err := m.ctl.hostSecrets.Secrets(ns).Get(name)
	if err != nil {
		if _, err := m.secrets.Secrets(ns).Get(name); err == nil {
			return nil
		}
		return m.foreign(ctx, "Secret", ns, name, func() (metav1.Object, error) {
			return m.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		})
	}
	if src.Type == corev1.SecretTypeServiceAccountToken {
		// A host token Secret is not copied (the member would not accept it
		// as such); a member Secret of its name is the member's own, likely
		// a member account's token: the pod is refused rather than mount it.
		if _, err := m.secrets.Secrets(ns).Get(name); err == nil {
			return nil
		}
		return m.foreign(ctx, "Secret", ns, name, func() (metav1.Object, error) {
			return m.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		})
	}
	have, _ := m.secrets.Secrets(ns).Get(name)
	if have != nil && have.Annotations[AnnotationSourceVersion] == src.ResourceVersion {
		return nil
	}
	s := &corev1.Secret{ObjectMeta: m.ownMeta(ns, name), Type: src.Type, Data: src.Data, Immutable: src.Immutable}
	s.Annotations[AnnotationSourceVersion] = src.ResourceVersion
	return m.writeSecret(ctx, s, have)
}

// writeSecret creates s, or replaces the tree's copy have with it.
func (m *memberSync) writeSecret(ctx context.Context, s, have *corev1.Secret) error {
	ss := m.cs.CoreV1().Secrets(s.Namespace)
	var err error
	switch {
	case have == nil:
		_, err = ss.Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return m.foreign(ctx, "Secret", s.Namespace, s.Name, func() (metav1.Object, error) { return ss.Get(ctx, s.Name, metav1.GetOptions{}) })
		}
	case have.Type != s.Type || (have.Immutable != nil && *have.Immutable):
		if err = ss.Delete(ctx, s.Name, metav1.DeleteOptions{}); err == nil {
			return errRequeue // type and immutable copies are replaced, not updated
		}
		err = raced(err)
	default:
		s.ResourceVersion = have.ResourceVersion
		_, err = ss.Update(ctx, s, metav1.UpdateOptions{FieldManager: FieldManager})
		err = raced(err)
	}
	if err != nil {
		// The error names the Secret, never its data.
		return fmt.Errorf("Secret %s/%s in member %s: %w", s.Namespace, s.Name, m.name, err)
	}
	return nil
}

// errForeign says a pod needs an object whose name the member uses for
// one of its own: it is never overwritten, nor read by a host pod.
var errForeign = errors.New("the member cluster has an object of this name that Kosmos did not create")

// raced turns what a write to the tree's own copy says when another
// worker changed or removed that copy first (a conflict; not found) into
// errRequeue: a look again once the cache has caught up, no failure.
func raced(err error) error {
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return errRequeue
	}
	return err
}

// foreign looks at the member's object of that name: none (nil), the
// tree's own copy not yet in the cache (look again), or the member's own
// (errForeign).
func (m *memberSync) foreign(ctx context.Context, kind, ns, name string, get func() (metav1.Object, error)) error {
	o, err := get()
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case m.isOwn(o.GetLabels()):
		return errRequeue
	}
	return fmt.Errorf("%s %s/%s: %w", kind, ns, name, errForeign)
}

// ensureClaim creates the member's claim for host claim ns/name, asking
// for the same storage; binding there is the member's business.
//
// The copy names its source's UID (translate.AnnotationHostClaimUID): a
// copy of an earlier host claim of the same name is waited out (collect
// removes it), never used for the new one.
func (m *memberSync) ensureClaim(ctx context.Context, ns, name string) error {
	src, err := m.ctl.hostClaims.PersistentVolumeClaims(ns).Get(name)
	if have, herr := m.claims.PersistentVolumeClaims(ns).Get(name); herr == nil {
		if err == nil && !translate.CopiesClaim(src, have) {
			return errRequeue
		}
		return nil
	}
	if err != nil {
		return m.foreign(ctx, "PersistentVolumeClaim", ns, name, func() (metav1.Object, error) {
			return m.cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		})
	}
	c := &corev1.PersistentVolumeClaim{ObjectMeta: m.ownMeta(ns, name), Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: src.Spec.AccessModes, Resources: src.Spec.Resources, StorageClassName: src.Spec.StorageClassName,
		VolumeMode: src.Spec.VolumeMode, Selector: src.Spec.Selector,
	}}
	maps.Copy(c.Labels, src.Labels)
	c.Labels[LabelManagedBy], c.Labels[translate.LabelOwner] = ManagedBy, m.owner
	c.Annotations[AnnotationSourceVersion] = src.ResourceVersion
	c.Annotations[translate.AnnotationHostClaimUID] = string(src.UID)
	_, err = m.cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, c, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return m.foreign(ctx, "PersistentVolumeClaim", ns, name, func() (metav1.Object, error) {
			return m.cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		})
	}
	if err != nil {
		return fmt.Errorf("PersistentVolumeClaim %s/%s in member %s: %w", ns, name, m.name, err)
	}
	return nil
}

// reconcileCopy brings one ConfigMap or Secret copy (queue key
// "configmap:ns/name" or "secret:ns/name") up to date with its host source.
//
// A host object under the reserved prefix (translate.Reserved) is never
// copied: its copy would overwrite, or pose as, a token Secret.
func (m *memberSync) reconcileCopy(ctx context.Context, key string) error {
	kind, nsName, _ := strings.Cut(key, ":")
	ns, name, _ := strings.Cut(nsName, "/")
	if translate.Reserved(name) {
		return nil
	}
	if kind+":" == keyConfigMap {
		return m.syncConfigMap(ctx, ns, name)
	}
	return m.syncSecret(ctx, ns, name)
}

// collect deletes the tree's copies no synced pod needs any more:
// ConfigMaps, Secrets (host tokens among them) and ServiceAccounts no host
// pod of this member nor member pod of the tree references, and claims
// whose host claim is gone, being deleted, or recreated since (UID).
// Tokens near expiry are renewed.
func (m *memberSync) collect(ctx context.Context) error {
	if !m.ready.Load() {
		return nil
	}
	// Copies first, wanted second: a copy made for a pod that appears in
	// between is then wanted, never collected.
	cms, _ := m.configMaps.List(labels.Everything())
	secs, _ := m.secrets.List(labels.Everything())
	sas, _ := m.accounts.List(labels.Everything())
	claims, _ := m.claims.List(labels.Everything())
	want := m.wantedCopies()
	var errs []error
	// del deletes a copy if it is still the object listed (UID).
	del := func(kind string, o metav1.Object, f func(metav1.DeleteOptions) error) {
		uid := o.GetUID()
		if err := f(metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("collect %s %s/%s in member %s: %w", kind, o.GetNamespace(), o.GetName(), m.name, err))
		}
	}
	for _, o := range cms {
		if !want["cm"].Has(o.Namespace + "/" + o.Name) {
			del("ConfigMap", o, func(d metav1.DeleteOptions) error {
				return m.cs.CoreV1().ConfigMaps(o.Namespace).Delete(ctx, o.Name, d)
			})
		}
	}
	for _, o := range secs {
		switch {
		case !want["secret"].Has(o.Namespace + "/" + o.Name):
			del("Secret", o, func(d metav1.DeleteOptions) error { return m.cs.CoreV1().Secrets(o.Namespace).Delete(ctx, o.Name, d) })
		case strings.HasPrefix(o.Name, translate.TokenSecretPrefix) && o.Annotations[AnnotationTokenExpires] != "" && tokenDue(o, time.Now()):
			errs = append(errs, m.renewToken(ctx, o))
		}
	}
	for _, o := range sas {
		if !want["sa"].Has(o.Namespace + "/" + o.Name) {
			del("ServiceAccount", o, func(d metav1.DeleteOptions) error {
				return m.cs.CoreV1().ServiceAccounts(o.Namespace).Delete(ctx, o.Name, d)
			})
		}
	}
	for _, o := range claims {
		src, err := m.ctl.hostClaims.PersistentVolumeClaims(o.Namespace).Get(o.Name)
		if apierrors.IsNotFound(err) || (err == nil && (src.DeletionTimestamp != nil || !translate.CopiesClaim(src, o))) {
			del("PersistentVolumeClaim", o, func(d metav1.DeleteOptions) error {
				return m.cs.CoreV1().PersistentVolumeClaims(o.Namespace).Delete(ctx, o.Name, d)
			})
		}
	}
	errs = append(errs, m.collectVolumes(ctx))
	return errors.Join(errs...)
}

// wantedCopies are the copies some pod needs, as "namespace/name" by kind
// (cm, secret, sa): the dependencies of the host pods on this member's
// virtual nodes (each one's token Secret included) and of the tree's
// member pods.
func (m *memberSync) wantedCopies() map[string]sets.Set[string] {
	want := map[string]sets.Set[string]{"cm": {}, "secret": {}, "sa": {}}
	// add adds what pod p needs; a member pod already names the tree's
	// account (and its token Secret, as a volume).
	add := func(p *corev1.Pod, host bool) {
		d := translate.DepsOf(p)
		for _, n := range d.ConfigMaps {
			want["cm"].Insert(p.Namespace + "/" + n)
		}
		for _, n := range d.Secrets {
			want["secret"].Insert(p.Namespace + "/" + n)
		}
		for _, n := range d.ServiceAccounts {
			if host {
				n = translate.MemberAccountName(n)
			}
			want["sa"].Insert(p.Namespace + "/" + n)
		}
		if host {
			want["secret"].Insert(p.Namespace + "/" + translate.TokenSecretName(p.UID))
		}
	}
	for _, p := range m.ctl.hostPodsOf(m.name) {
		if translate.DaemonSetOf(p) == "" { // DaemonSet pods are never copied
			add(p, true)
		}
	}
	own, _ := m.podLister.List(m.ownSelector())
	for _, p := range own {
		add(p, false)
	}
	if adm := m.ctl.dsAdmission.Load(); adm != nil { // kept ones: by their member DaemonSet below
		for _, ds := range adm.run {
			add(translate.DaemonSetTemplatePod(ds), true)
		}
	}
	sets, _ := m.daemonSets.List(labels.Everything())
	for _, ds := range sets { // their template names the tree's account already
		add(translate.DaemonSetTemplatePod(ds), false)
	}
	return want
}
