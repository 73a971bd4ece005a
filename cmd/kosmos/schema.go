package main

import (
	"github.com/spf13/cobra"

	"kosmos.io/kosmos/schema"
)

func newSchemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON schema of a KosmosTopology file",
		Long: `Schema prints the JSON schema generated from the Go types: descriptions,
enums, patterns, required fields and defaults. Point an editor at it (the
yaml-language-server line at the top of topology.example.yaml does) or use it
in CI.`,
		Example: `  kosmos schema > kosmos-topology.schema.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(schema.JSONSchema())
			return err
		},
	}
}
