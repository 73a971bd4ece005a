// This file places member copies among a member's node groups
// (tree.nodeGroups). A pod bound to a group's virtual node must run on
// that group's member nodes: the group's selector joins the copy's node
// selector. A pod bound to the cluster's default virtual node must stay
// off them, for their room is counted on the groups' nodes, not on the
// default one: "not in group G" is "some label of G's selector differs",
// a disjunction of NotIn expressions, so staying off every group is their
// conjunction, which node affinity can only say in disjunctive form: one
// required term for each way of picking one label per group (crossed
// with the pod's own terms). maxGroupTerms bounds that product.

package translate

import (
	"fmt"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// maxGroupTerms is the most required node-affinity terms a default-node
// copy may end up with.
const maxGroupTerms = 64

// placeInGroup adds o's node-group placement to spec (a copy's, whose
// node selector and affinity came from the member-scheduling annotation).
func placeInGroup(spec *corev1.PodSpec, o PodOptions) error {
	if len(o.GroupSelector) > 0 {
		sel := map[string]string{}
		for k, v := range spec.NodeSelector {
			sel[k] = v
		}
		for k, v := range o.GroupSelector {
			if have, ok := sel[k]; ok && have != v {
				return fmt.Errorf("annotation %s: nodeSelector %s=%s conflicts with the node group of virtual node %s (%s=%s)", AnnotationMemberScheduling, k, have, o.VirtualNode, k, v)
			}
			sel[k] = v
		}
		spec.NodeSelector = sel
	}
	if len(o.AvoidGroups) == 0 {
		return nil
	}
	terms, err := avoidTerms(requiredTerms(spec.Affinity), o.AvoidGroups)
	if err != nil {
		return fmt.Errorf("virtual node %s: %w", o.VirtualNode, err)
	}
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: terms}
	return nil
}

func requiredTerms(a *corev1.Affinity) []corev1.NodeSelectorTerm {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	return a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
}

// avoidTerms are the required terms that keep a pod whose own required
// terms are own (none: any node) off the member nodes of every selector
// in avoid: each own term crossed with every choice of one label per
// selector, as a NotIn expression (true also where the label is absent).
func avoidTerms(own []corev1.NodeSelectorTerm, avoid []map[string]string) ([]corev1.NodeSelectorTerm, error) {
	terms := own
	if len(terms) == 0 {
		terms = []corev1.NodeSelectorTerm{{}}
	}
	for _, sel := range avoid {
		keys := make([]string, 0, len(sel))
		for k := range sel {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(terms)*len(keys) > maxGroupTerms {
			return nil, fmt.Errorf("keeping the copy off the member's node groups takes more than %d node-affinity terms; use fewer labels in the groups' selectors", maxGroupTerms)
		}
		var next []corev1.NodeSelectorTerm
		for _, t := range terms {
			for _, k := range keys {
				nt := corev1.NodeSelectorTerm{
					MatchExpressions: append(slices.Clone(t.MatchExpressions), corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpNotIn, Values: []string{sel[k]}}),
					MatchFields:      slices.Clone(t.MatchFields),
				}
				next = append(next, nt)
			}
		}
		terms = next
	}
	return terms, nil
}
