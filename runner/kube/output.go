package kube

import (
	"errors"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"

	"faultline.dev/faultline/compiler/chaosmesh"
	"faultline.dev/faultline/internal/exitcode"
)

// WriteObjects prints what a run would create: "Kind namespace/name (fault F)" per line, or, with
// format "yaml", the objects themselves as YAML documents, or with "json" one JSON object per line.
func WriteObjects(w io.Writer, objs []*Object, format string) error {
	for i, o := range objs {
		switch format {
		case "yaml":
			data, err := yaml.Marshal(o.Obj.Object)
			if err != nil {
				return err
			}
			if i > 0 {
				if _, err := io.WriteString(w, "---\n"); err != nil {
					return err
				}
			}
			if _, err := w.Write(data); err != nil {
				return err
			}
		case "json":
			data, err := o.Obj.MarshalJSON()
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "%s\n", data); err != nil {
				return err
			}
		default:
			what := "fault " + o.Fault.Name
			switch {
			case o.Kind == "TestRun" || o.Kind == "ConfigMap":
				what = "the in-cluster load (k6-operator)"
			case o.Fault.Name == "":
				what = "the whole timeline; Chaos Mesh's workflow engine creates each fault's object"
			}
			if _, err := fmt.Fprintf(w, "%s %s/%s (%s): would be created (server dry run passed)\n",
				o.Kind, o.Obj.GetNamespace(), o.Obj.GetName(), what); err != nil {
				return err
			}
		}
	}
	return nil
}

// ExitCode maps an error of Preflight, Prepare or a Cleaner to faultline's exit codes:
// a refusal (guardrails, permissions, leftovers) is 2 (usage: lifted by a flag, the scenario or
// the credentials, not by retrying); a scenario that cannot be compiled is 3; everything else —
// Chaos Mesh missing, the server-side dry run rejected, the API server unreachable, objects
// left after a cleanup — is 7 (infrastructure).
func ExitCode(err error) int {
	var re *RefusedError
	var se *chaosmesh.ScenarioError
	switch {
	case err == nil:
		return exitcode.OK
	case errors.As(err, &re):
		return exitcode.Usage
	case errors.As(err, &se):
		if se.HasBug() {
			return exitcode.Internal
		}
		return exitcode.Invalid
	default:
		return exitcode.Infrastructure
	}
}
