package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"faultline.dev/faultline/compiler"
	"faultline.dev/faultline/compiler/plan"
	"faultline.dev/faultline/internal/exitcode"
	"faultline.dev/faultline/schema"
)

func newCompileCmd() *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "compile PATH...",
		Short: "Compile scenarios into Chaos Mesh objects, a Workflow, k6 files and plan.json",
		Long: `compile loads scenarios and writes each into DIR/<name>/<version>/:

  chaos/<NN>-<fault>.yaml  one Chaos Mesh object per fault, with its own duration
  workflow.yaml            the same timeline as one Chaos Mesh Workflow
  plan.json                timeline, phases, SLOs, versions, sha256 of every file

Every Chaos Mesh object is checked offline by Chaos Mesh's own rules (its
webhooks and CRD schema). Output is byte-identical for the same scenario.
A compiled version is immutable: compiling changed content under the same
version fails (bump the version); the same content again is a no-op.

Exit codes: 0 compiled, 3 invalid scenario or version not bumped, 1 faultline bug, 2 usage error.`,
		Example: `  faultline compile scenarios/ -o out
  faultline compile scenarios/checkout-jitter.cue`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			loaded, diags, err := schema.NewLoader().Load(cmd.Context(), args)
			if err != nil {
				return exitcode.With(exitcode.Aborted, err)
			}
			code := exitcode.OK
			for _, d := range diags {
				fmt.Fprintln(stderr, d.String())
				code = exitcode.Invalid
			}
			for _, l := range loaded {
				res, err := compiler.Compile(cmd.Context(), l, outDir)
				if err != nil {
					var ce *compiler.Error
					switch {
					case errors.As(err, &ce):
						fmt.Fprintln(stderr, ce.Diagnostics.Error())
						if ce.Bug {
							code = exitcode.Internal
						} else if code != exitcode.Internal {
							code = exitcode.Invalid
						}
					case errors.Is(err, compiler.ErrVersionExists):
						fmt.Fprintln(stderr, err)
						if code != exitcode.Internal {
							code = exitcode.Invalid
						}
					case cmd.Context().Err() != nil:
						return exitcode.With(exitcode.Aborted, err)
					default:
						return err
					}
					continue
				}
				state := "compiled "
				if res.Unchanged {
					state = "unchanged"
				}
				fmt.Fprintf(stdout, "%s %s@%s\t%s\t(%d files)\n", state, l.Scenario.Name, l.Scenario.Version, res.Dir, len(res.Files))
			}
			if code != exitcode.OK {
				return exitcode.With(code, errSilent)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&outDir, "output", "o", "out", "directory to compile into")
	return cmd
}

func newPlanCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "plan PATH",
		Short: "Show a scenario's timeline: load, faults, phases",
		Long: `plan loads the scenarios at PATH and prints each one's timeline: a small
Gantt chart (text) or the plan as JSON.

Exit codes: 0 ok, 3 invalid scenario, 2 usage error.`,
		Example: `  faultline plan scenarios/checkout-jitter.cue
  faultline plan -o json scenarios/slow-downstream.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output must be text or json, not %q", output)}
			}
			loaded, diags, err := schema.NewLoader().Load(cmd.Context(), args)
			if err != nil {
				return exitcode.With(exitcode.Aborted, err)
			}
			for _, d := range diags {
				fmt.Fprintln(cmd.ErrOrStderr(), d.String())
			}
			var plans []*plan.Plan
			for _, l := range loaded {
				p, err := plan.New(l.Scenario)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), l.Pos("faults", err.Error()).String())
					diags = append(diags, schema.Diagnostic{})
					continue
				}
				plans = append(plans, p)
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				var v any = plans
				if len(plans) == 1 {
					v = plans[0]
				}
				if err := enc.Encode(v); err != nil {
					return err
				}
			} else {
				for i, p := range plans {
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					if err := writeGantt(cmd.OutOrStdout(), p); err != nil {
						return err
					}
				}
			}
			if len(diags) > 0 {
				return exitcode.With(exitcode.Invalid, errSilent)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// ganttWidth is the width of the timeline bars, in characters.
const ganttWidth = 60

// writeGantt draws the plan: a load bar, one bar per fault, the phases.
func writeGantt(w io.Writer, p *plan.Plan) error {
	total := time.Duration(p.LoadEnd)
	col := func(d plan.Duration) int {
		if total <= 0 {
			return 0
		}
		return int((time.Duration(d)*ganttWidth + total/2) / total)
	}
	bar := func(start, end plan.Duration, fill byte) string {
		b := []byte(strings.Repeat(" ", ganttWidth))
		from, to := col(start), col(end)
		if to <= from {
			to = min(from+1, ganttWidth)
			from = to - 1
		}
		for i := from; i < to; i++ {
			b[i] = fill
		}
		return string(b)
	}
	label := 18
	for _, f := range p.Faults {
		label = max(label, len(f.Name)+4)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%s  load %s\n", p.Scenario, p.Version, p.LoadEnd)
	end := p.LoadEnd.String()
	fmt.Fprintf(&b, "%-*s 0s%s%s\n", label, "", strings.Repeat(" ", max(ganttWidth-2-len(end), 1)), end)
	fmt.Fprintf(&b, "%-*s|%s|  %s → %s\n", label, "load", bar(0, p.LoadEnd, '='), plan.Duration(0), p.LoadEnd)
	for _, f := range p.Faults {
		kind := f.Kind
		if f.Instant {
			kind += " (once at " + f.Start.String() + ", judged until " + f.End.String() + ")"
		}
		fmt.Fprintf(&b, "%-*s|%s|  %s → %s  %s\n", label, fmt.Sprintf("%02d %s", f.Index, f.Name),
			bar(f.Start, f.End, '#'), f.Start, f.End, kind)
	}
	phases := []byte(strings.Repeat(" ", ganttWidth))
	for _, ph := range p.Phases {
		from, to := col(ph.Start), col(ph.End)
		for i := from; i < to && i < ganttWidth; i++ {
			phases[i] = ph.Name[0]
		}
	}
	fmt.Fprintf(&b, "%-*s|%s|\n", label, "phases", phases)
	for _, ph := range p.Phases {
		fmt.Fprintf(&b, "  %-*s%s → %s", label-2, ph.Name, ph.Start, ph.End)
		if ph.Name == plan.Recovery && ph.JudgeFrom != ph.Start {
			fmt.Fprintf(&b, " (judged from %s)", ph.JudgeFrom)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// withVersionCheck adds the "check" subcommand to the version command.
func withVersionCheck(version *cobra.Command) *cobra.Command {
	version.AddCommand(newVersionCheckCmd())
	return version
}

func newVersionCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check OLD NEW",
		Short: "Say which version bump a scenario change needs, and whether NEW has it",
		Long: `check compares scenarios of the same name in OLD and NEW (files or
directories) and says which semver bump the change needs:

  major  name, target, load, faults or their timing changed
  minor  SLOs, checks (request expect), baseline or guardrails added or changed
  patch  description, owner or labels changed

Exit codes: 0 every NEW version is bumped enough, 3 a NEW version is not
(or a scenario is invalid), 2 usage error. Usable as a pre-commit hook.`,
		Example: `  git show HEAD:scenarios/pod-kill.cue > /tmp/old.cue
  faultline version check /tmp/old.cue scenarios/pod-kill.cue`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			load := func(p string) (map[string]*schema.Scenario, error) {
				loaded, diags, err := schema.NewLoader().Load(cmd.Context(), []string{p})
				if err != nil {
					return nil, exitcode.With(exitcode.Aborted, err)
				}
				if len(diags) > 0 {
					fmt.Fprintln(stderr, diags.Error())
					return nil, exitcode.With(exitcode.Invalid, errSilent)
				}
				out := map[string]*schema.Scenario{}
				for _, l := range loaded {
					out[l.Scenario.Name] = l.Scenario
				}
				return out, nil
			}
			olds, err := load(args[0])
			if err != nil {
				return err
			}
			news, err := load(args[1])
			if err != nil {
				return err
			}
			var names []string
			for n := range news {
				if _, ok := olds[n]; ok {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			if len(names) == 0 {
				return usageError{fmt.Errorf("no scenario name is in both %s and %s", args[0], args[1])}
			}
			failed := false
			for _, n := range names {
				o, nw := olds[n], news[n]
				need, reasons := compiler.RequiredBump(o, nw)
				ok, err := compiler.BumpedEnough(o.Version, nw.Version, need)
				if err != nil {
					return exitcode.With(exitcode.Invalid, err)
				}
				verdict := "ok"
				if !ok {
					verdict = "NOT BUMPED ENOUGH"
					failed = true
				}
				fmt.Fprintf(stdout, "%s: %s → %s: needs %s bump: %s\n", n, o.Version, nw.Version, need, verdict)
				for _, r := range reasons {
					fmt.Fprintf(stdout, "  %s\n", r)
				}
			}
			if failed {
				return exitcode.With(exitcode.Invalid, errSilent)
			}
			return nil
		},
	}
}
