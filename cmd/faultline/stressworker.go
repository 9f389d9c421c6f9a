package main

import (
	"github.com/spf13/cobra"

	"faultline.dev/faultline/runner/local/stress"
)

// newStressWorkerCmd is the hidden command the local backend starts in the
// target's cgroup for cpuStress and memoryStress.
func newStressWorkerCmd() *cobra.Command {
	var c stress.WorkerConfig
	cmd := &cobra.Command{
		Use:    "stress-worker",
		Short:  "Burn CPU or hold memory beside a local target (started by the local backend)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := stress.Worker(cmd.Context(), c, cmd.OutOrStdout()); err != nil {
				return usageError{err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.CPUWorkers, "cpu-workers", 0, "threads that burn CPU")
	f.Float64Var(&c.Load, "load", 100, "percentage of a CPU each CPU worker keeps busy")
	f.IntVar(&c.MemoryWorkers, "memory-workers", 0, "workers that each hold --memory-bytes")
	f.Int64Var(&c.MemoryBytes, "memory-bytes", 0, "bytes each memory worker holds")
	return cmd
}
