package policies

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func dp(name string, sel *metav1.LabelSelector, mode v1alpha1.PlacementMode, clusters ...string) *v1alpha1.DistributionPolicy {
	p := &v1alpha1.DistributionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.DistributionPolicyObjectSpec{
		Selector: v1alpha1.PodSelector{Namespace: "shop", LabelSelector: sel}, HostCluster: "host",
		Placement: v1alpha1.Placement{Mode: mode},
	}}
	for _, c := range clusters {
		w := int32(1)
		p.Spec.Placement.Clusters = append(p.Spec.Placement.Clusters, v1alpha1.ClusterPlacement{Name: c, Weight: &w})
	}
	return p
}

var badSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name         string
		in           *v1alpha1.DistributionPolicy
		wantErr      string
		wantRequired bool
		wantMembers  bool
		matches      map[string]string // labels of a pod the policy selects
		misses       map[string]string // labels of a pod it does not
	}{
		{name: "no selector", in: dp("all", nil, "", "a"), wantRequired: true, wantMembers: true, matches: map[string]string{"x": "y"}},
		{name: "labels", in: dp("web", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, v1alpha1.PlacementRequired, "a", "host"),
			wantRequired: true, wantMembers: true, matches: map[string]string{"app": "web"}, misses: map[string]string{"app": "db"}},
		{name: "preferred", in: dp("soft", nil, v1alpha1.PlacementPreferred, "b"), wantRequired: false, wantMembers: true},
		{name: "host only", in: dp("home", nil, "", "host"), wantRequired: true, wantMembers: false},
		{name: "bad selector", in: dp("broken", badSelector, ""), wantErr: `DistributionPolicy broken: label selector: "Bogus" is not a valid label selector operator`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pol.Name != tc.in.Name || pol.Host != "host" || pol.Required != tc.wantRequired || pol.SendsToMembers() != tc.wantMembers {
				t.Errorf("parsed %s: host %q required %v sendsToMembers %v, want host required %v sendsToMembers %v",
					pol.Name, pol.Host, pol.Required, pol.SendsToMembers(), tc.wantRequired, tc.wantMembers)
			}
			s := &Store{}
			pod := func(l map[string]string) *corev1.Pod {
				return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p", Labels: l}}
			}
			if tc.matches != nil && !s.Matches(pol, pod(tc.matches)) {
				t.Errorf("does not match a pod labelled %v", tc.matches)
			}
			if tc.misses != nil && s.Matches(pol, pod(tc.misses)) {
				t.Errorf("matches a pod labelled %v", tc.misses)
			}
			other := pod(tc.matches)
			other.Namespace = "other"
			if s.Matches(pol, other) {
				t.Error("matches a pod of another namespace")
			}
		})
	}
}

func TestMatchesOwner(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	isController := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "rs-uid",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d-uid", Controller: &isController}}}}
	if err := idx.Add(rs); err != nil {
		t.Fatal(err)
	}
	s := &Store{rs: appslisters.NewReplicaSetLister(idx)}
	owned := func(kind, name string, uid types.UID) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: &isController}}}}
	}
	for _, tc := range []struct {
		owner v1alpha1.OwnerSelector
		pod   *corev1.Pod
		want  bool
	}{
		{v1alpha1.OwnerSelector{Kind: "Deployment", Name: "web"}, owned("ReplicaSet", "web-1", "rs-uid"), true},
		{v1alpha1.OwnerSelector{Kind: "Deployment"}, owned("ReplicaSet", "web-1", "rs-uid"), true},
		{v1alpha1.OwnerSelector{Kind: "Deployment", Name: "api"}, owned("ReplicaSet", "web-1", "rs-uid"), false},
		{v1alpha1.OwnerSelector{Kind: "Deployment", Name: "web"}, owned("ReplicaSet", "gone", "x"), false},
		{v1alpha1.OwnerSelector{Kind: "ReplicaSet", Name: "web-1"}, owned("ReplicaSet", "web-1", "rs-uid"), true},
		{v1alpha1.OwnerSelector{Kind: "statefulset", Name: "db"}, owned("StatefulSet", "db", "ss-uid"), true},
		{v1alpha1.OwnerSelector{Kind: "StatefulSet", Name: "db"}, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "bare"}}, false},
	} {
		p := dp("owned", nil, "")
		p.Spec.Selector.Owner = &tc.owner
		pol, err := Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Matches(pol, tc.pod); got != tc.want {
			t.Errorf("owner %+v, pod owned by %v: matches %v, want %v", tc.owner, tc.pod.OwnerReferences, got, tc.want)
		}
	}
}

// TestSetLogsPoliciesThatDoNotParse: a policy that does not parse is
// logged with its name and the reason, and the last good version stays.
func TestSetLogsPoliciesThatDoNotParse(t *testing.T) {
	var logged []string
	s := &Store{byName: map[string]*Policy{}, log: funcr.New(func(prefix, args string) { logged = append(logged, args) }, funcr.Options{})}
	toU := func(p *v1alpha1.DistributionPolicy) *unstructured.Unstructured {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: m}
	}
	expect := func(step string, wantLog []string, wantPolicies int) {
		t.Helper()
		if len(s.byName) != wantPolicies {
			t.Errorf("%s: %d policies held, want %d", step, len(s.byName), wantPolicies)
		}
		if len(logged) != len(wantLog) {
			t.Fatalf("%s: logged %q, want %d lines", step, logged, len(wantLog))
		}
		for i, w := range wantLog {
			for _, part := range strings.Split(w, "|") {
				if !strings.Contains(logged[i], part) {
					t.Errorf("%s: log line %q lacks %q", step, logged[i], part)
				}
			}
		}
	}
	s.set(toU(dp("broken", badSelector, "")))
	line := `"msg"="Ignoring a DistributionPolicy that does not parse"|"policy"="broken"|Bogus|is not a valid label selector operator`
	expect("new and broken", []string{line + `|"previousVersionKept"=false`}, 0)

	s.set(toU(dp("broken", nil, "", "a")))
	expect("fixed", []string{line}, 1)

	s.set(toU(dp("broken", badSelector, "")))
	expect("broken again", []string{line, line + `|"previousVersionKept"=true`}, 1)
	if s.Match(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p"}}) == nil {
		t.Error("the last good version no longer matches")
	}

	u := toU(dp("mistyped", nil, ""))
	u.Object["spec"].(map[string]any)["placement"] = "everywhere"
	s.set(u)
	expect("mistyped", []string{line, line, `"policy"="mistyped"|DistributionPolicy mistyped: cannot restore struct`}, 1)

	s.remove(cache.DeletedFinalStateUnknown{Key: "broken", Obj: toU(dp("broken", nil, ""))})
	expect("deleted", []string{line, line, "mistyped"}, 0)
}
