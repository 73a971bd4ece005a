// Package scheme is the one runtime.Scheme of Kosmos: every type a Kosmos
// component reads or writes (the Kosmos API, core, CRDs, EndpointSlices and
// the Multi-Cluster Services API), so that every room decodes the same way
// without importing another room for it.
package scheme

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// New returns a scheme that knows every type Kosmos reads or writes.
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, corev1.AddToScheme, apiextv1.AddToScheme, discoveryv1.AddToScheme, mcsv1a1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}
