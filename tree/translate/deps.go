package translate

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Deps are the objects a pod needs in its namespace, each list sorted and
// without duplicates.
type Deps struct {
	ConfigMaps, Secrets, PVCs, ServiceAccounts []string
}

// DepsOf lists what host pod hp references: ConfigMaps and Secrets of
// volumes (projected too), env and envFrom, imagePullSecrets, claims, and
// its ServiceAccount (whose token Secret it mounts). kube-root-ca.crt is
// left out: every namespace of the member has its own.
func DepsOf(hp *corev1.Pod) Deps {
	cms, secs, pvcs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, v := range hp.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cms[v.ConfigMap.Name] = true
		case v.Secret != nil:
			secs[v.Secret.SecretName] = true
		case v.PersistentVolumeClaim != nil:
			pvcs[v.PersistentVolumeClaim.ClaimName] = true
		case v.Projected != nil && !isAPIAccess(&v):
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cms[s.ConfigMap.Name] = true
				}
				if s.Secret != nil {
					secs[s.Secret.Name] = true
				}
			}
		}
	}
	for _, cs := range [][]corev1.Container{hp.Spec.InitContainers, hp.Spec.Containers} {
		for _, c := range cs {
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil {
					cms[e.ConfigMapRef.Name] = true
				}
				if e.SecretRef != nil {
					secs[e.SecretRef.Name] = true
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					cms[r.Name] = true
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					secs[r.Name] = true
				}
			}
		}
	}
	for _, r := range hp.Spec.ImagePullSecrets {
		secs[r.Name] = true
	}
	delete(cms, "kube-root-ca.crt")
	sa := hp.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return Deps{ConfigMaps: sortedKeys(cms), Secrets: sortedKeys(secs), PVCs: sortedKeys(pvcs), ServiceAccounts: []string{sa}}
}

func sortedKeys(m map[string]bool) []string {
	out := slices.Collect(maps.Keys(m))
	slices.Sort(out)
	return out
}
