package reconciler

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Err joins the pass's failures, each naming its cluster once: clusters
// that failed (or whose cleanup is pending), a tripped deletion guard, and
// an inventory that could not be read or saved. The planner's problems are
// not failures of the pass (see Problems).
func (r Report) Err() error {
	var errs []error
	if r.Refused != nil {
		errs = append(errs, r.Refused)
	}
	if r.Guard.Tripped {
		errs = append(errs, errors.New(r.Guard.Message()))
	}
	for _, c := range r.Clusters {
		if c.Err != nil && !c.Forgotten {
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

// Write prints what the pass did per cluster (with every object when
// verbose): what happened, never what was merely meant.
func (rep Report) Write(out io.Writer, verbose bool) {
	for _, p := range rep.Problems {
		fmt.Fprintln(out, "problem:", p)
	}
	if rep.Refused != nil {
		fmt.Fprintln(out, rep.Refused)
	}
	if rep.Guard.Tripped {
		fmt.Fprintln(out, rep.Guard.Message())
		return
	}
	for _, c := range rep.Clusters {
		r := c.Result
		switch {
		case c.Forgotten && len(r.Pruned) == 0:
			fmt.Fprintf(out, "cluster %s: left the topology; forgotten, its objects stay\n", c.Name)
			continue
		case c.Forgotten:
			fmt.Fprintf(out, "cluster %s: left the topology; %d pruned, forgotten\n", c.Name, len(r.Pruned))
		case c.Leaving:
			fmt.Fprintf(out, "cluster %s: left the topology; %d pruned, %d failed, cleanup pending\n", c.Name, len(r.Pruned), len(r.Failed))
		default:
			fmt.Fprintf(out, "cluster %s: %d created, %d updated, %d pruned, %d unchanged", c.Name, len(r.Created), len(r.Updated), len(r.Pruned), len(r.Unchanged))
			if len(r.Failed) > 0 {
				fmt.Fprintf(out, ", %d failed", len(r.Failed))
			}
			fmt.Fprintln(out)
		}
		if verbose {
			for _, set := range []struct {
				mark string
				keys []string
			}{{"+", r.Created}, {"~", r.Updated}, {"-", r.Pruned}, {"!", r.Failed}, {"released", r.Released}} {
				for _, k := range set.keys {
					fmt.Fprintf(out, "  %s %s\n", set.mark, k)
				}
			}
		}
		if c.Err != nil {
			fmt.Fprintf(out, "  error: %s\n", strings.ReplaceAll(c.Err.Error(), "\n", "\n  "))
		}
	}
	if rep.InventoryErr != nil {
		fmt.Fprintf(out, "inventory: %v\n", rep.InventoryErr)
	}
}
