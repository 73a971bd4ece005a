// Command jsonschema regenerates schema/kosmos-topology.schema.json from the
// Go types. Run it from the module root (make generate does).
package main

import (
	"fmt"
	"os"

	"kosmos.io/kosmos/schema"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "jsonschema:", err)
		os.Exit(1)
	}
}

func run() error {
	out, err := schema.GenerateJSONSchema(".")
	if err != nil {
		return err
	}
	return os.WriteFile(schema.JSONSchemaFile, out, 0o644)
}
