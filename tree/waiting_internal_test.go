package tree

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestOnlyWaiting(t *testing.T) {
	other := errors.New("ConfigMap shop/cfg: " + errForeign.Error())
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccounts"}, "web")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"errRequeue", errRequeue, true},
		{"wrapped errRequeue", fmt.Errorf("claim: %w", errRequeue), true},
		{"joined waits", errors.Join(errRequeue, nil, fmt.Errorf("x: %w", errRequeue)), true},
		{"a wait joined to a failure", errors.Join(errRequeue, other), false},
		{"a failure joined to a wait, wrapped", fmt.Errorf("deps: %w", errors.Join(other, errRequeue)), false},
		{"a host account gone (NotFound)", notFound, false},
		{"NotFound joined to a wait", errors.Join(errRequeue, notFound), false},
		{"another error", other, false},
		{"only nil parts", joinedNils{}, false},
		{"a raced update", fmt.Errorf("ConfigMap shop/cfg: %w", raced(apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "cfg", errors.New("modified")))), true},
		{"a raced delete", raced(apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, "s")), true},
		{"a refused update", raced(apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "s", errors.New("no"))), false},
	} {
		if got := onlyWaiting(tc.err); got != tc.want {
			t.Errorf("%s: onlyWaiting(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// joinedNils is a joined error whose every part is nil.
type joinedNils struct{}

func (joinedNils) Error() string   { return "nothing" }
func (joinedNils) Unwrap() []error { return []error{nil, nil} }
