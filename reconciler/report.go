package reconciler

import (
	"errors"
	"fmt"
	"strings"
)

// Err joins the pass's failures, each naming its cluster once: clusters
// that failed (or whose cleanup is pending), a tripped deletion guard, and
// an inventory that could not be read or saved. The planner's problems are
// not failures of the pass (see Problems).
func (r Report) Err() error {
	var errs []error
	if r.Guard.Tripped {
		errs = append(errs, errors.New(r.Guard.Message()))
	}
	for _, c := range r.Clusters {
		if c.Err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, c.Err))
		}
	}
	if r.InventoryErr != nil {
		errs = append(errs, r.InventoryErr)
	}
	return errors.Join(errs...)
}

// ProblemsErr joins the planner's problems, if any.
func (r Report) ProblemsErr() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return fmt.Errorf("plan: %s", strings.Join(r.Problems, "; "))
}
