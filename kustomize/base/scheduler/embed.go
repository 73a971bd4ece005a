// Package scheduler embeds the KubeSchedulerConfiguration shipped for
// `kosmos scheduler`, so the local sandbox runs exactly what is deployed.
package scheduler

import _ "embed"

// Config is scheduler-config.yaml of this folder.
//
//go:embed scheduler-config.yaml
var Config []byte
