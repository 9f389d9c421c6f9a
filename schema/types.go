package schema

import "time"

// The Go mirror of schema/scenario.cue. Field names and JSON tags follow the
// CUE schema exactly; TestGoTypesMirrorSchema keeps the two in step. Optional
// fields are pointers or omitempty so that an unset field stays unset.

// Scenario mirrors #Scenario.
type Scenario struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Target      Target            `json:"target"`
	Load        Load              `json:"load"`
	Faults      map[string]Fault  `json:"faults,omitempty"`
	SLOs        *SLOs             `json:"slos,omitempty"`
	Baseline    *Baseline         `json:"baseline,omitempty"`
	Guardrails  *Guardrails       `json:"guardrails,omitempty"`
}

// Target mirrors #Target.
type Target struct {
	URL        string            `json:"url"`
	Kubernetes *KubernetesTarget `json:"kubernetes,omitempty"`
	GRPC       string            `json:"grpc,omitempty"`
	GRPCTLS    bool              `json:"grpcTLS,omitempty"`
	Protos     *Protos           `json:"protos,omitempty"`
	Metrics    string            `json:"metrics,omitempty"`
	Prometheus *PrometheusTarget `json:"prometheus,omitempty"`
	Local      *LocalTarget      `json:"local,omitempty"`
}

// PrometheusTarget mirrors #Target.prometheus.
type PrometheusTarget struct {
	URL      string            `json:"url"`
	Matchers map[string]string `json:"matchers,omitempty"`
	PodLabel string            `json:"podLabel,omitempty"`
}

// Protos mirrors #Target.protos.
type Protos struct {
	Files       []string `json:"files"`
	ImportPaths []string `json:"importPaths,omitempty"`
}

// KubernetesTarget mirrors #Target.kubernetes.
type KubernetesTarget struct {
	Namespace string            `json:"namespace"`
	Selector  map[string]string `json:"selector"`
}

// LocalTarget mirrors #Target.local.
type LocalTarget struct {
	Command   []string          `json:"command"`
	Env       map[string]string `json:"env,omitempty"`
	Port      int               `json:"port,omitempty"`
	Readiness string            `json:"readiness,omitempty"`
	DataDir   string            `json:"dataDir,omitempty"`
}

// Executor names.
const (
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
	ConstantVUs         = "constant-vus"
	RampingVUs          = "ramping-vus"
	PerVUIterations     = "per-vu-iterations"
	SharedIterations    = "shared-iterations"
)

// Load mirrors #Load.
type Load struct {
	Executor         string    `json:"executor"`
	Rate             int       `json:"rate,omitempty"`
	StartRate        *int      `json:"startRate,omitempty"`
	TimeUnit         Duration  `json:"timeUnit,omitempty"`
	Duration         Duration  `json:"duration,omitempty"`
	Stages           []Stage   `json:"stages,omitempty"`
	PreAllocatedVUs  int       `json:"preAllocatedVUs,omitempty"`
	MaxVUs           int       `json:"maxVUs,omitempty"`
	VUs              int       `json:"vus,omitempty"`
	StartVUs         *int      `json:"startVUs,omitempty"`
	Iterations       int       `json:"iterations,omitempty"`
	MaxDuration      Duration  `json:"maxDuration,omitempty"`
	GracefulStop     *Duration `json:"gracefulStop,omitempty"`
	GracefulRampDown *Duration `json:"gracefulRampDown,omitempty"`
	Parallelism      int       `json:"parallelism,omitempty"`
	Requests         []Request `json:"requests"`
}

// Stage mirrors #Stage.
type Stage struct {
	Duration Duration `json:"duration"`
	Target   int      `json:"target"`
}

// Request mirrors #Request.
type Request struct {
	Name    string            `json:"name,omitempty"`
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path,omitempty"`
	GRPC    *GRPCCall         `json:"grpc,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    *string           `json:"body,omitempty"`
	Weight  int               `json:"weight,omitempty"`
	Expect  *Expect           `json:"expect,omitempty"`
}

// GRPCCall mirrors #GRPCCall.
type GRPCCall struct {
	Method   string            `json:"method"`
	Message  map[string]any    `json:"message,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Expect mirrors #Request.expect.
type Expect struct {
	Status       int         `json:"status,omitempty"`
	BodyContains []string    `json:"bodyContains,omitempty"`
	GRPCStatus   *GRPCStatus `json:"grpcStatus,omitempty"`
}

// Modes.
const (
	ModeOne              = "one"
	ModeAll              = "all"
	ModeFixed            = "fixed"
	ModeFixedPercent     = "fixed-percent"
	ModeRandomMaxPercent = "random-max-percent"
)

// Selector mirrors #Selector.
type Selector struct {
	Namespace           string              `json:"namespace,omitempty"`
	Namespaces          []string            `json:"namespaces,omitempty"`
	Labels              map[string]string   `json:"labels"`
	Pods                map[string][]string `json:"pods,omitempty"`
	ExpressionSelectors []LabelRequirement  `json:"expressionSelectors,omitempty"`
	AnnotationSelectors map[string]string   `json:"annotationSelectors,omitempty"`
	FieldSelectors      map[string]string   `json:"fieldSelectors,omitempty"`
	PodPhaseSelectors   []string            `json:"podPhaseSelectors,omitempty"`
	Nodes               []string            `json:"nodes,omitempty"`
	NodeSelectors       map[string]string   `json:"nodeSelectors,omitempty"`
}

// LabelRequirement mirrors #LabelRequirement.
type LabelRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// Fault mirrors #Fault. Exactly one of the kind fields is set.
type Fault struct {
	Start    Duration  `json:"start"`
	Duration Duration  `json:"duration,omitempty"`
	Mode     string    `json:"mode,omitempty"`
	Value    int       `json:"value,omitempty"`
	Selector *Selector `json:"selector,omitempty"`

	NetworkDelay     *NetworkDelay     `json:"networkDelay,omitempty"`
	NetworkLoss      *NetworkLoss      `json:"networkLoss,omitempty"`
	NetworkDuplicate *NetworkDuplicate `json:"networkDuplicate,omitempty"`
	NetworkCorrupt   *NetworkCorrupt   `json:"networkCorrupt,omitempty"`
	NetworkBandwidth *NetworkBandwidth `json:"networkBandwidth,omitempty"`
	NetworkPartition *NetworkPartition `json:"networkPartition,omitempty"`
	Netem            *Netem            `json:"netem,omitempty"`
	IOLatency        *IOLatency        `json:"ioLatency,omitempty"`
	IOFault          *IOFault          `json:"ioFault,omitempty"`
	IOAttrOverride   *IOAttrOverride   `json:"ioAttrOverride,omitempty"`
	IOMistake        *IOMistake        `json:"ioMistake,omitempty"`
	TimeSkew         *TimeSkew         `json:"timeSkew,omitempty"`
	CPUStress        *CPUStress        `json:"cpuStress,omitempty"`
	MemoryStress     *MemoryStress     `json:"memoryStress,omitempty"`
	StressNG         *StressNG         `json:"stressNG,omitempty"`
	PodKill          *PodKill          `json:"podKill,omitempty"`
	PodFailure       *PodFailure       `json:"podFailure,omitempty"`
	ContainerKill    *ContainerKill    `json:"containerKill,omitempty"`
	HTTPFault        *HTTPFault        `json:"httpFault,omitempty"`
	DNSFault         *DNSFault         `json:"dnsFault,omitempty"`
	GRPCFault        *GRPCFault        `json:"grpcFault,omitempty"`
}

// Kind names the fault's kind block ("networkDelay", "cpuStress", ...), or ""
// when none is set.
func (f *Fault) Kind() string {
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"networkDelay", f.NetworkDelay != nil},
		{"networkLoss", f.NetworkLoss != nil},
		{"networkDuplicate", f.NetworkDuplicate != nil},
		{"networkCorrupt", f.NetworkCorrupt != nil},
		{"networkBandwidth", f.NetworkBandwidth != nil},
		{"networkPartition", f.NetworkPartition != nil},
		{"netem", f.Netem != nil},
		{"ioLatency", f.IOLatency != nil},
		{"ioFault", f.IOFault != nil},
		{"ioAttrOverride", f.IOAttrOverride != nil},
		{"ioMistake", f.IOMistake != nil},
		{"timeSkew", f.TimeSkew != nil},
		{"cpuStress", f.CPUStress != nil},
		{"memoryStress", f.MemoryStress != nil},
		{"stressNG", f.StressNG != nil},
		{"podKill", f.PodKill != nil},
		{"podFailure", f.PodFailure != nil},
		{"containerKill", f.ContainerKill != nil},
		{"httpFault", f.HTTPFault != nil},
		{"dnsFault", f.DNSFault != nil},
		{"grpcFault", f.GRPCFault != nil},
	} {
		if k.set {
			return k.name
		}
	}
	return ""
}

// OneShot reports whether the fault acts once, at its start (podKill,
// containerKill: Chaos Mesh's one-shot actions), rather than for a window.
func (f *Fault) OneShot() bool { return f.PodKill != nil || f.ContainerKill != nil }

// OneShotWindow is the window of a one-shot fault written with just start:
// the kill happens at the instant start, and the fault phase and the fault's
// efficacy are judged on the OneShotWindow after it (the time the service
// has to show the effect). A duration, when written, sets that window.
const OneShotWindow = Duration(30 * time.Second)

// Instant reports whether the fault is one-shot with no duration: its
// Chaos Mesh object has none, and its window is OneShotWindow.
func (f *Fault) Instant() bool { return f.Duration == 0 && f.OneShot() }

// Window is the span the fault is judged over: its duration, or
// OneShotWindow for an instant one-shot fault.
func (f *Fault) Window() Duration {
	if f.Instant() {
		return OneShotWindow
	}
	return f.Duration
}

// End is the end of the fault window, as an offset from the load start.
func (f *Fault) End() Duration { return f.Start + f.Window() }

// NetworkPeer mirrors #NetworkPeer.
type NetworkPeer struct {
	Selector *Selector `json:"selector,omitempty"`
	Mode     string    `json:"mode,omitempty"`
	Value    int       `json:"value,omitempty"`
	Hosts    []string  `json:"hosts,omitempty"`
	Device   string    `json:"device,omitempty"`
}

// Directions.
const (
	DirectionTo   = "to"
	DirectionFrom = "from"
	DirectionBoth = "both"
)

// NetworkDelay mirrors #NetworkDelay.
type NetworkDelay struct {
	Latency     Duration     `json:"latency"`
	Jitter      Duration     `json:"jitter,omitempty"`
	Correlation float64      `json:"correlation,omitempty"`
	Reorder     *Reorder     `json:"reorder,omitempty"`
	Direction   string       `json:"direction,omitempty"`
	Peer        *NetworkPeer `json:"peer,omitempty"`
	Device      string       `json:"device,omitempty"`
}

// Reorder mirrors #Reorder.
type Reorder struct {
	Reorder     float64 `json:"reorder"`
	Correlation float64 `json:"correlation,omitempty"`
	Gap         int     `json:"gap,omitempty"`
}

// NetworkLoss mirrors #NetworkLoss.
type NetworkLoss struct {
	Loss        float64      `json:"loss"`
	Correlation float64      `json:"correlation,omitempty"`
	Direction   string       `json:"direction,omitempty"`
	Peer        *NetworkPeer `json:"peer,omitempty"`
	Device      string       `json:"device,omitempty"`
}

// NetworkDuplicate mirrors #NetworkDuplicate.
type NetworkDuplicate struct {
	Duplicate   float64      `json:"duplicate"`
	Correlation float64      `json:"correlation,omitempty"`
	Direction   string       `json:"direction,omitempty"`
	Peer        *NetworkPeer `json:"peer,omitempty"`
	Device      string       `json:"device,omitempty"`
}

// NetworkCorrupt mirrors #NetworkCorrupt.
type NetworkCorrupt struct {
	Corrupt     float64      `json:"corrupt"`
	Correlation float64      `json:"correlation,omitempty"`
	Direction   string       `json:"direction,omitempty"`
	Peer        *NetworkPeer `json:"peer,omitempty"`
	Device      string       `json:"device,omitempty"`
}

// NetworkBandwidth mirrors #NetworkBandwidth.
type NetworkBandwidth struct {
	Rate      string       `json:"rate"`
	Limit     int          `json:"limit"`
	Buffer    int          `json:"buffer"`
	Peakrate  int          `json:"peakrate,omitempty"`
	Minburst  int          `json:"minburst,omitempty"`
	Direction string       `json:"direction,omitempty"`
	Peer      *NetworkPeer `json:"peer,omitempty"`
	Device    string       `json:"device,omitempty"`
}

// NetworkPartition mirrors #NetworkPartition.
type NetworkPartition struct {
	Direction string       `json:"direction,omitempty"`
	Peer      *NetworkPeer `json:"peer,omitempty"`
	Device    string       `json:"device,omitempty"`
}

// Netem mirrors #Netem.
type Netem struct {
	Delay     *NetemDelay     `json:"delay,omitempty"`
	Loss      *NetemLoss      `json:"loss,omitempty"`
	Duplicate *NetemDuplicate `json:"duplicate,omitempty"`
	Corrupt   *NetemCorrupt   `json:"corrupt,omitempty"`
	Rate      string          `json:"rate,omitempty"`
	Direction string          `json:"direction,omitempty"`
	Peer      *NetworkPeer    `json:"peer,omitempty"`
	Device    string          `json:"device,omitempty"`
}

// NetemDelay mirrors #Netem.delay.
type NetemDelay struct {
	Latency     Duration `json:"latency"`
	Jitter      Duration `json:"jitter,omitempty"`
	Correlation float64  `json:"correlation,omitempty"`
	Reorder     *Reorder `json:"reorder,omitempty"`
}

// NetemLoss mirrors #Netem.loss.
type NetemLoss struct {
	Loss        float64 `json:"loss"`
	Correlation float64 `json:"correlation,omitempty"`
}

// NetemDuplicate mirrors #Netem.duplicate.
type NetemDuplicate struct {
	Duplicate   float64 `json:"duplicate"`
	Correlation float64 `json:"correlation,omitempty"`
}

// NetemCorrupt mirrors #Netem.corrupt.
type NetemCorrupt struct {
	Corrupt     float64 `json:"corrupt"`
	Correlation float64 `json:"correlation,omitempty"`
}

// IOTarget mirrors #IOTarget.
type IOTarget struct {
	VolumePath     string   `json:"volumePath"`
	Path           string   `json:"path,omitempty"`
	Methods        []string `json:"methods,omitempty"`
	Percent        float64  `json:"percent,omitempty"`
	ContainerNames []string `json:"containerNames,omitempty"`
}

// IOLatency mirrors #IOLatency.
type IOLatency struct {
	IOTarget
	Delay Duration `json:"delay"`
}

// IOFault mirrors #IOFault.
type IOFault struct {
	IOTarget
	Errno int `json:"errno"`
}

// IOAttrOverride mirrors #IOAttrOverride.
type IOAttrOverride struct {
	IOTarget
	Attr IOAttr `json:"attr"`
}

// IOMistake mirrors #IOMistake.
type IOMistake struct {
	IOTarget
	Filling        string `json:"filling"`
	MaxOccurrences int    `json:"maxOccurrences"`
	MaxLength      int    `json:"maxLength"`
}

// IOAttr mirrors #IOAttrOverride.attr.
type IOAttr struct {
	Perm  *int `json:"perm,omitempty"`
	Size  *int `json:"size,omitempty"`
	NLink *int `json:"nlink,omitempty"`
	UID   *int `json:"uid,omitempty"`
	GID   *int `json:"gid,omitempty"`
}

// TimeSkew mirrors #TimeSkew.
type TimeSkew struct {
	Offset         Duration `json:"offset"`
	ClockIDs       []string `json:"clockIds,omitempty"`
	ContainerNames []string `json:"containerNames,omitempty"`
}

// CPUStress mirrors #CPUStress.
type CPUStress struct {
	Workers        int      `json:"workers"`
	Load           *float64 `json:"load,omitempty"`
	Options        []string `json:"options,omitempty"`
	ContainerNames []string `json:"containerNames,omitempty"`
}

// MemoryStress mirrors #MemoryStress.
type MemoryStress struct {
	Workers        int      `json:"workers"`
	Size           string   `json:"size"`
	OOMScoreAdj    int      `json:"oomScoreAdj,omitempty"`
	Options        []string `json:"options,omitempty"`
	ContainerNames []string `json:"containerNames,omitempty"`
}

// StressNG mirrors #StressNG.
type StressNG struct {
	Stressors      string   `json:"stressors"`
	ContainerNames []string `json:"containerNames,omitempty"`
}

// PodKill mirrors #PodKill.
type PodKill struct {
	GracePeriod int `json:"gracePeriod,omitempty"`
}

// PodFailure mirrors #PodFailure.
type PodFailure struct{}

// ContainerKill mirrors #ContainerKill.
type ContainerKill struct {
	ContainerNames []string `json:"containerNames"`
}

// HTTPFault mirrors #HTTPFault.
type HTTPFault struct {
	Target string `json:"target"`
	Port   int    `json:"port"`
	Path   string `json:"path,omitempty"`
	Method string `json:"method,omitempty"`
	Code   int    `json:"code,omitempty"`
	// RequestHeaders and ResponseHeaders select by headers.
	RequestHeaders  map[string]string `json:"requestHeaders,omitempty"`
	ResponseHeaders map[string]string `json:"responseHeaders,omitempty"`
	Abort           bool              `json:"abort,omitempty"`
	Delay           Duration          `json:"delay,omitempty"`
	Replace         *HTTPReplace      `json:"replace,omitempty"`
	Patch           *HTTPPatch        `json:"patch,omitempty"`
	TLS             *HTTPTLS          `json:"tls,omitempty"`
}

// HTTPTLS mirrors #HTTPFault.tls.
type HTTPTLS struct {
	SecretName      string `json:"secretName"`
	SecretNamespace string `json:"secretNamespace,omitempty"`
	CertName        string `json:"certName"`
	KeyName         string `json:"keyName"`
	CAName          string `json:"caName,omitempty"`
}

// HTTPReplace mirrors #HTTPFault.replace.
type HTTPReplace struct {
	Code    int               `json:"code,omitempty"`
	Body    *string           `json:"body,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Path    string            `json:"path,omitempty"`
	Method  string            `json:"method,omitempty"`
	Queries map[string]string `json:"queries,omitempty"`
}

// HTTPPatch mirrors #HTTPFault.patch.
type HTTPPatch struct {
	Body    *HTTPPatchBody `json:"body,omitempty"`
	Queries [][]string     `json:"queries,omitempty"`
	Headers [][]string     `json:"headers,omitempty"`
}

// HTTPPatchBody mirrors #HTTPFault.patch.body.
type HTTPPatchBody struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// GRPCFault mirrors #GRPCFault.
type GRPCFault struct {
	Target string      `json:"target,omitempty"`
	Method string      `json:"method,omitempty"`
	Abort  *GRPCStatus `json:"abort,omitempty"`
	Delay  Duration    `json:"delay,omitempty"`
}

// DNSFault mirrors #DNSFault.
type DNSFault struct {
	Action         string   `json:"action"`
	Patterns       []string `json:"patterns"`
	ContainerNames []string `json:"containerNames,omitempty"`
}

// Phases.
const (
	PhaseSteady   = "steady"
	PhaseFault    = "fault"
	PhaseRecovery = "recovery"
)

// SLOs mirrors #SLOs.
type SLOs struct {
	Steady   *PhaseSLO    `json:"steady,omitempty"`
	Fault    *PhaseSLO    `json:"fault,omitempty"`
	Recovery *RecoverySLO `json:"recovery,omitempty"`
}

// RecoverySLO mirrors #SLOs.recovery.
type RecoverySLO struct {
	PhaseSLO
	Within Duration `json:"within,omitempty"`
}

// PhaseSLO mirrors #PhaseSLO.
type PhaseSLO struct {
	Latency       *LatencySLO  `json:"latency,omitempty"`
	ErrorRate     *float64     `json:"errorRate,omitempty"`
	Checks        *float64     `json:"checks,omitempty"`
	Throughput    *float64     `json:"throughput,omitempty"`
	Goroutines    *GaugeSLO    `json:"goroutines,omitempty"`
	HeapInUse     *HeapSLO     `json:"heapInUse,omitempty"`
	GCPause       *GCPauseSLO  `json:"gcPause,omitempty"`
	SchedLatency  *SchedLatSLO `json:"schedLatency,omitempty"`
	AbortOnBreach bool         `json:"abortOnBreach,omitempty"`
}

// LatencySLO mirrors #PhaseSLO.latency.
type LatencySLO struct {
	P50 Duration `json:"p50,omitempty"`
	P90 Duration `json:"p90,omitempty"`
	P95 Duration `json:"p95,omitempty"`
	P99 Duration `json:"p99,omitempty"`
	Avg Duration `json:"avg,omitempty"`
	Max Duration `json:"max,omitempty"`
}

// GaugeSLO mirrors #GaugeSLO.
type GaugeSLO struct {
	Max        int      `json:"max,omitempty"`
	OverSteady *float64 `json:"overSteady,omitempty"`
}

// HeapSLO mirrors #PhaseSLO.heapInUse.
type HeapSLO struct {
	Max        Size     `json:"max,omitempty"`
	OverSteady *float64 `json:"overSteady,omitempty"`
}

// GCPauseSLO mirrors #PhaseSLO.gcPause.
type GCPauseSLO struct {
	P99 Duration `json:"p99,omitempty"`
	Max Duration `json:"max,omitempty"`
}

// SchedLatSLO mirrors #PhaseSLO.schedLatency.
type SchedLatSLO struct {
	P99 Duration `json:"p99,omitempty"`
}

// Tolerance mirrors #Tolerance.
type Tolerance struct {
	Relative *float64 `json:"relative,omitempty"`
	Absolute *float64 `json:"absolute,omitempty"`
}

// Baseline mirrors #Baseline.
type Baseline struct {
	Default  *Tolerance           `json:"default,omitempty"`
	Steady   map[string]Tolerance `json:"steady,omitempty"`
	Fault    map[string]Tolerance `json:"fault,omitempty"`
	Recovery map[string]Tolerance `json:"recovery,omitempty"`
}

// Guardrails mirrors #Guardrails.
type Guardrails struct {
	AllowedNamespaces []string     `json:"allowedNamespaces,omitempty"`
	MaxBlastRadius    float64      `json:"maxBlastRadius,omitempty"`
	HealthCheck       *HealthCheck `json:"healthCheck,omitempty"`
}

// HealthCheck mirrors #Guardrails.healthCheck.
type HealthCheck struct {
	URL              string   `json:"url"`
	Status           int      `json:"status,omitempty"`
	Interval         Duration `json:"interval,omitempty"`
	Timeout          Duration `json:"timeout,omitempty"`
	FailureThreshold int      `json:"failureThreshold,omitempty"`
}
