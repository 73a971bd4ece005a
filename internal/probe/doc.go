// Package probe is `kosmos check --probe`: real packets between the
// clusters of a topology, judged as rows of the check table.
//
// # Pure core
//
// Plan lists the probes: for every ordered pair of clusters, from each
// probe endpoint of the first (its pod network and its host network) to the
// pod endpoint of the second, at the address the sender reaches it by
// (global where the receiver's pod range is mapped), for each protocol
// (ICMP echo, TCP echo, UDP echo), same address family only. Checks turns
// results into one row per ordered pair and source network, naming the
// broken pairs. Both are pure functions over plain data.
//
// # Exported services
//
// With Options.Services, each cluster also exports a short-lived probe
// Service (MCS ServiceExport) of its pod-network echo server, and every
// other cluster probes the ClusterSetIP of its import by TCP and UDP echo:
// rows "probe service A/pod-net → B" (services.go: PlanServices and
// ServicesRow are pure; the Exporter creates, awaits and removes). A
// runner that can do this is a ServiceRunner.
//
// # Runners
//
// How probes run is a Runner: PodRunner creates short-lived probe pods
// (the Kosmos image running `kosmos probe serve` and `kosmos probe client`)
// in a dedicated namespace of every cluster through the API; the sandbox
// (internal/sandbox) runs the same echo server and client of this package
// inside its pod and node network namespaces. Run starts a runner, plans,
// probes and always cleans up with a fresh context, also when ctx is
// cancelled (Ctrl-C).
//
// # Wire format
//
// The echo is one line: the client sends "kosmos-probe <nonce>\n" over TCP
// or as one UDP datagram; the server sends the same bytes back.
package probe
