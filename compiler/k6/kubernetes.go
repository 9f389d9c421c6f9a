package k6

import (
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Label keys on every object.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelScenario  = "faultline.dev/scenario"
	LabelVersion   = "faultline.dev/version"
)

type objectMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels"`
}

type configMap struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   objectMeta        `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
}

type testRun struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   objectMeta  `json:"metadata"`
	Spec       testRunSpec `json:"spec"`
}

type testRunSpec struct {
	Parallelism int            `json:"parallelism"`
	Script      testRunScript  `json:"script"`
	Arguments   string         `json:"arguments"`
	Runner      *testRunRunner `json:"runner,omitempty"`
}

// testRunRunner is the runner pods' part of a TestRun.
type testRunRunner struct {
	Env []envVar `json:"env"`
}

type envVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// RemoteWrite is how the runners send their samples to target.prometheus:
// k6's built-in output, trends as native histograms (they merge exactly
// across runners), pushed every second. The phase, fault and faultline_*
// tags become labels; faultline reads the per-phase numbers back
// (runner/prom).
const (
	RemoteWriteOutput       = "experimental-prometheus-rw"
	RemoteWritePushInterval = "1s"
)

type testRunScript struct {
	ConfigMap testRunConfigMap `json:"configMap"`
}

type testRunConfigMap struct {
	Name string `json:"name"`
	File string `json:"file"`
}

// ConfigMapName is the name of the ConfigMap holding a scenario's script.
func ConfigMapName(scenario string) string { return scenario + "-k6" }

// labelValue makes a semver a valid label value: "+" (build metadata) is
// not allowed there and becomes "_".
func labelValue(s string) string { return strings.ReplaceAll(s, "+", "_") }

// kubernetes writes the k6-operator TestRun and the ConfigMap with the script.
func (c *compilation) kubernetes(script []byte) (testRunYAML, configMapYAML []byte, err error) {
	labels := map[string]string{}
	for k, v := range c.s.Labels {
		labels[k] = v
	}
	labels[LabelManagedBy] = "faultline"
	labels[LabelScenario] = c.p.Scenario
	labels[LabelVersion] = labelValue(c.p.Version)
	ns := ""
	if c.s.Target.Kubernetes != nil {
		ns = c.s.Target.Kubernetes.Namespace
	}
	parallelism := c.s.Load.Parallelism
	if parallelism == 0 {
		parallelism = defaultParallelism
	}
	if strings.ContainsAny(c.p.Scenario+c.p.Version, " \t\r\n\"'") {
		return nil, nil, fmt.Errorf("k6: scenario %q version %q: the name and version must not contain spaces or quotes (the TestRun's arguments are split on spaces)", c.p.Scenario, c.p.Version)
	}
	cmName := ConfigMapName(c.p.Scenario)
	tr := testRun{
		APIVersion: "k6.io/v1alpha1",
		Kind:       "TestRun",
		Metadata:   objectMeta{Name: c.p.Scenario, Namespace: ns, Labels: labels},
		Spec: testRunSpec{
			Parallelism: parallelism,
			Script:      testRunScript{ConfigMap: testRunConfigMap{Name: cmName, File: "script.js"}},
			// Test-wide tags, so every sample names its scenario and version.
			// The operator splits arguments on spaces: both values are
			// schema-checked (a DNS label and a semver) and have none.
			Arguments: "--tag faultline_scenario=" + c.p.Scenario + " --tag faultline_version=" + c.p.Version,
		},
	}
	if pr := c.s.Target.Prometheus; pr != nil && pr.URL != "" {
		tr.Spec.Arguments += " -o " + RemoteWriteOutput
		tr.Spec.Runner = &testRunRunner{Env: []envVar{
			{Name: "K6_PROMETHEUS_RW_SERVER_URL", Value: strings.TrimSuffix(pr.URL, "/") + "/api/v1/write"},
			{Name: "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM", Value: "true"},
			{Name: "K6_PROMETHEUS_RW_PUSH_INTERVAL", Value: RemoteWritePushInterval},
		}}
	}
	cm := configMap{
		APIVersion: "v1",
		Kind:       "ConfigMap",
		Metadata:   objectMeta{Name: cmName, Namespace: ns, Labels: labels},
	}
	if testRunYAML, err = yaml.Marshal(tr); err != nil {
		return nil, nil, fmt.Errorf("k6: scenario %s: writing TestRun: %w", c.p.Scenario, err)
	}
	if configMapYAML, err = configMapYAMLOf(cm, script); err != nil {
		return nil, nil, fmt.Errorf("k6: scenario %s: writing ConfigMap: %w", c.p.Scenario, err)
	}
	return testRunYAML, configMapYAML, nil
}

// configMapYAMLOf writes the ConfigMap with the script as a literal block
// scalar, written directly: YAML's generic encoder spends most of the
// compile time scanning the script. A script that a literal block cannot
// hold verbatim (anything but printable ASCII, a leading space, not exactly
// one final newline) goes through the encoder instead.
func configMapYAMLOf(cm configMap, script []byte) ([]byte, error) {
	if !literalSafe(script) {
		cm.Data = map[string]string{"script.js": string(script)}
		return yaml.Marshal(cm)
	}
	head, err := yaml.Marshal(struct {
		APIVersion string     `json:"apiVersion"`
		Kind       string     `json:"kind"`
		Metadata   objectMeta `json:"metadata"`
	}{cm.APIVersion, cm.Kind, cm.Metadata})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(head)
	b.WriteString("data:\n  script.js: |\n")
	for _, line := range bytes.SplitAfter(script, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if len(line) > 1 {
			b.WriteString("    ")
		}
		b.Write(line)
	}
	return b.Bytes(), nil
}

// literalSafe says whether a YAML literal block ("|", clip chomping) holds
// s verbatim.
func literalSafe(s []byte) bool {
	if len(s) == 0 || s[0] == ' ' || s[0] == '\n' || !bytes.HasSuffix(s, []byte("\n")) || bytes.HasSuffix(s, []byte("\n\n")) {
		return false
	}
	for _, c := range s {
		if (c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}
