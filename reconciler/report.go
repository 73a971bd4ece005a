package reconciler

import (
	"errors"
	"fmt"
	"strings"
)

// Err joins the pass's failures: every cluster that failed, and the
// planner's problems.
func (r Report) Err() error {
	var errs []error
	for _, c := range r.Clusters {
		if c.Err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, c.Err))
		}
	}
	if len(r.Problems) > 0 {
		errs = append(errs, fmt.Errorf("plan: %s", strings.Join(r.Problems, "; ")))
	}
	return errors.Join(errs...)
}
