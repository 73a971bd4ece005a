package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"kosmos.io/kosmos/schema"
)

type validateResult struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Clusters int              `json:"clusters,omitempty"`
	Problems []schema.Problem `json:"problems,omitempty"`
	Error    string           `json:"error,omitempty"`
}

func newValidateCommand() *cobra.Command {
	var files []string
	var output string
	cmd := &cobra.Command{
		Use:   "validate [-f FILE]... [FILE]...",
		Short: "Check topology files against the schema and every rule",
		Long: `Validate loads each topology file, applies defaults and checks every rule.
All problems are listed at once, each as file:line:col: field.path: message.

Exit status: 0 when every file is valid, 1 when one is invalid, 2 on a usage
or read error.`,
		Example: `  kosmos validate -f topology.yaml
  kosmos validate topology.yaml staging/topology.yaml
  kosmos validate -f topology.yaml -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			files = append(files, args...)
			if len(files) == 0 {
				return &exitError{exitError2, errors.New("validate: no file given; use -f FILE")}
			}
			if output != "text" && output != "json" {
				return &exitError{exitError2, fmt.Errorf("validate: -o %q: want text or json", output)}
			}
			results, code := validateFiles(files)
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return &exitError{exitError2, err}
				}
			} else {
				for _, r := range results {
					switch {
					case r.Error != "":
						fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", r.File, r.Error)
					case r.Valid:
						fmt.Fprintf(out, "%s: valid (%d clusters)\n", r.File, r.Clusters)
					default:
						fmt.Fprintln(out, schema.Problems(r.Problems).Error())
						fmt.Fprintf(out, "%s: invalid: %d problem(s)\n", r.File, len(r.Problems))
					}
				}
			}
			if code != exitOK {
				return &exitError{code: code, err: errors.New("")}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "topology file to validate (repeatable)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// validateFiles loads every file and returns the results and the exit code:
// read errors win over invalid files.
func validateFiles(files []string) ([]validateResult, int) {
	code := exitOK
	results := make([]validateResult, 0, len(files))
	for _, f := range files {
		r := validateResult{File: f}
		t, err := schema.LoadFile(f)
		var ps schema.Problems
		switch {
		case err == nil:
			r.Valid, r.Clusters = true, len(t.Spec.Clusters)
		case errors.As(err, &ps):
			r.Problems = ps
			code = max(code, exitInvalid)
		default:
			r.Error = err.Error()
			code = exitError2
		}
		results = append(results, r)
	}
	return results, code
}
