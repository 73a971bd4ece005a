package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kosmos.io/kosmos/internal/probe"
)

// newProbeCommand is `kosmos probe`: the echo server and the client the
// probe pods of `kosmos check --probe` run.
func newProbeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "The echo server and client of kosmos check --probe (what its probe pods run)",
		Long: `Probe is what the short-lived probe pods of kosmos check --probe run:
"probe serve" answers a TCP and a UDP echo on --port; "probe client" sends
one probe to each target (icmp:ADDR, tcp:ADDR, udp:ADDR, to --port) and
prints one JSON answer a line. Nothing else: no API access, no state.`,
		Args: cobra.NoArgs,
	}
	var port int
	serve := &cobra.Command{
		Use:     "serve",
		Short:   "Answer the TCP and UDP echo on --port until stopped",
		Example: "  kosmos probe serve --port 4890",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := probe.Listen(port)
			if err != nil {
				return &exitError{exitError2, err}
			}
			s.Serve()
			fmt.Fprintf(cmd.OutOrStdout(), "kosmos probe: echo on TCP and UDP port %d\n", port)
			<-ctx.Done()
			return s.Close()
		},
	}
	serve.Flags().IntVar(&port, "port", probe.DefaultPort, "TCP and UDP port of the echo")
	var cport int
	var perProbe time.Duration
	var resultFile string
	clientCmd := &cobra.Command{
		Use:   "client TARGET...",
		Short: "Probe each target (icmp:ADDR, tcp:ADDR, udp:ADDR) and print the answers as JSON lines",
		Long: `Client probes every target at once, each for at most --per-probe, and prints
one JSON object a line: {"t":"tcp:10.1.0.2"} when the echo came back, with
"e" the error when not, "s" when it could not be tried (ICMP not permitted).
--result-file also receives the answers (the pod's termination log).
Exit status 0 when the probes ran, whatever they found.`,
		Example: "  kosmos probe client tcp:10.1.0.2 udp:10.1.0.2 icmp:10.1.0.2",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var targets []probe.Target
			for _, a := range args {
				t, err := probe.ParseTarget(a)
				if err != nil {
					return &exitError{exitError2, err}
				}
				targets = append(targets, t)
			}
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			for _, a := range probe.Client(cmd.Context(), targets, cport, perProbe) {
				if err := enc.Encode(a); err != nil {
					return err
				}
			}
			if _, err := cmd.OutOrStdout().Write(out.Bytes()); err != nil {
				return err
			}
			if resultFile != "" {
				if err := os.WriteFile(resultFile, out.Bytes(), 0o644); err != nil {
					return &exitError{exitError2, errors.Join(fmt.Errorf("write %s", resultFile), err)}
				}
			}
			return nil
		},
	}
	clientCmd.Flags().IntVar(&cport, "port", probe.DefaultPort, "TCP and UDP port of the echo servers")
	clientCmd.Flags().DurationVar(&perProbe, "per-probe", 3*time.Second, "how long to wait for one answer")
	clientCmd.Flags().StringVar(&resultFile, "result-file", "", "also write the answers to this file (e.g. /dev/termination-log)")
	cmd.AddCommand(serve, clientCmd)
	return cmd
}
