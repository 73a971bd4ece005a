package mcs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Observe reads the facts of one cluster: its namespaces, ServiceExports,
// and the Services (with their EndpointSlices) that are exported there or
// named by spec.services. It only reads. c's scheme must know core,
// discovery and the MCS types.
func Observe(ctx context.Context, c client.Client, topology string, specs []v1alpha1.ServiceSpec, now time.Time) (*Facts, error) {
	f := &Facts{ObservedAt: now}
	var nss corev1.NamespaceList
	if err := c.List(ctx, &nss); err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range nss.Items {
		f.Namespaces = append(f.Namespaces, ns.Name)
	}
	var exps mcsv1a1.ServiceExportList
	if err := c.List(ctx, &exps); err != nil && !meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("list ServiceExports: %w", err)
	}
	if err := observeImports(ctx, c, topology, f); err != nil {
		return nil, err
	}
	var keys []client.ObjectKey
	for _, e := range exps.Items {
		owned := e.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedBy && e.Labels[v1alpha1.LabelTopology] == topology
		f.Exports = append(f.Exports, Export{Namespace: e.Namespace, Name: e.Name, Created: e.CreationTimestamp.Time, Owned: owned, Conditions: e.Status.Conditions})
		keys = append(keys, client.ObjectKey{Namespace: e.Namespace, Name: e.Name})
	}
	for _, s := range specs {
		keys = append(keys, client.ObjectKey{Namespace: s.Namespace, Name: s.Name})
	}
	slices.SortFunc(keys, func(a, b client.ObjectKey) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, k := range slices.Compact(keys) {
		var svc corev1.Service
		if err := c.Get(ctx, k, &svc); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("get Service %s: %w", k, err)
		}
		var eps discoveryv1.EndpointSliceList
		if err := c.List(ctx, &eps, client.InNamespace(k.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: k.Name}); err != nil {
			return nil, fmt.Errorf("list EndpointSlices of Service %s: %w", k, err)
		}
		f.Services = append(f.Services, serviceFacts(&svc, eps.Items))
	}
	return f, nil
}

// observeImports reads the ServiceImports and EndpointSlices Kosmos keeps
// in the cluster (what a restarted reconciler knows of the clusters it
// cannot reach).
func observeImports(ctx context.Context, c client.Client, topology string, f *Facts) error {
	own := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: topology}
	var sis mcsv1a1.ServiceImportList
	if err := c.List(ctx, &sis, own); err != nil && !meta.IsNoMatchError(err) {
		return fmt.Errorf("list ServiceImports: %w", err)
	}
	for _, si := range sis.Items {
		imp := Import{Namespace: si.Namespace, Name: si.Name, Type: si.Spec.Type, Ports: si.Spec.Ports}
		for _, cs := range si.Status.Clusters {
			imp.Clusters = append(imp.Clusters, cs.Cluster)
		}
		f.Imports = append(f.Imports, imp)
	}
	var imported discoveryv1.EndpointSliceList
	if err := c.List(ctx, &imported, own, client.HasLabels{mcsv1a1.LabelSourceCluster}); err != nil {
		return fmt.Errorf("list imported EndpointSlices: %w", err)
	}
	for _, s := range imported.Items {
		f.Imported = append(f.Imported, discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: s.Namespace, Labels: s.Labels, Annotations: s.Annotations},
			AddressType: s.AddressType, Ports: s.Ports, Endpoints: s.Endpoints,
		})
	}
	return observeDerived(ctx, c, own, f)
}

// observeDerived reads the Services Kosmos derived from ClusterSetIP
// imports, with the ClusterIPs the API server allocated them.
func observeDerived(ctx context.Context, c client.Client, own client.MatchingLabels, f *Facts) error {
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs, own, client.HasLabels{mcsv1a1.LabelServiceName}); err != nil {
		return fmt.Errorf("list derived Services: %w", err)
	}
	for _, s := range svcs.Items {
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
			ips = []string{s.Spec.ClusterIP}
		}
		f.Derived = append(f.Derived, Derived{Namespace: s.Namespace, Import: s.Labels[mcsv1a1.LabelServiceName], Name: s.Name, ClusterIPs: ips})
	}
	slices.SortFunc(f.Derived, func(a, b Derived) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Import, b.Import), cmp.Compare(a.Name, b.Name))
	})
	return nil
}

// serviceFacts keeps what the sync needs of a Service and its slices.
func serviceFacts(svc *corev1.Service, eps []discoveryv1.EndpointSlice) Service {
	s := Service{Namespace: svc.Namespace, Name: svc.Name, Type: svc.Spec.Type, Headless: svc.Spec.ClusterIP == corev1.ClusterIPNone, SessionAffinity: svc.Spec.SessionAffinity}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, ip := range ips {
		if ip != corev1.ClusterIPNone {
			s.ClusterIPs = append(s.ClusterIPs, ip)
		}
	}
	for _, p := range svc.Spec.Ports {
		s.Ports = append(s.Ports, mcsv1a1.ServicePort{Name: p.Name, Protocol: p.Protocol, AppProtocol: p.AppProtocol, Port: p.Port})
	}
	slices.SortFunc(eps, func(a, b discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	for _, e := range eps {
		s.Slices = append(s.Slices, discoveryv1.EndpointSlice{AddressType: e.AddressType, Ports: e.Ports, Endpoints: e.Endpoints})
	}
	return s
}

// WriteStatus writes the status of the ServiceExports (conditions) and
// ServiceImports (exporting clusters) whose status changed, by server-side
// apply of the status subresource. Errors are collected per object; it
// returns the number of writes.
func WriteStatus(ctx context.Context, c client.Client, fieldManager string, exports []ExportStatus, imports []Import) (int, error) {
	n, err := writeExportStatus(ctx, c, fieldManager, exports)
	errs := []error{err}
	for _, s := range imports {
		if !s.Changed {
			continue
		}
		clusters := make([]any, 0, len(s.Clusters))
		for _, cl := range s.Clusters {
			clusters = append(clusters, map[string]any{"cluster": cl})
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": mcsv1a1.GroupVersion.String(), "kind": mcsv1a1.ServiceImportKindName,
			"metadata": map[string]any{"namespace": s.Namespace, "name": s.Name},
			"status":   map[string]any{"clusters": clusters},
		}}
		if err := c.Status().Patch(ctx, u, client.Apply, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("status of ServiceImport %s/%s: %w", s.Namespace, s.Name, err))
			}
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func writeExportStatus(ctx context.Context, c client.Client, fieldManager string, st []ExportStatus) (int, error) {
	var errs []error
	n := 0
	for _, s := range st {
		if !s.Changed {
			continue
		}
		conds := make([]any, 0, len(s.Conditions))
		for _, cd := range s.Conditions {
			conds = append(conds, map[string]any{
				"type": cd.Type, "status": string(cd.Status), "reason": cd.Reason, "message": cd.Message,
				"lastTransitionTime": cd.LastTransitionTime.UTC().Format(time.RFC3339),
			})
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": mcsv1a1.GroupVersion.String(), "kind": mcsv1a1.ServiceExportKindName,
			"metadata": map[string]any{"namespace": s.Namespace, "name": s.Name},
			"status":   map[string]any{"conditions": conds},
		}}
		if err := c.Status().Patch(ctx, u, client.Apply, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			if apierrors.IsNotFound(err) {
				continue // created in this pass by apply failing, or deleted meanwhile: next pass
			}
			errs = append(errs, fmt.Errorf("status of ServiceExport %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
