package k6opts

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"faultline.dev/faultline/internal/suggest"
)

// Options are k6's options as a script exports them: every option k6 reads
// from `export const options`, by its JSON name. Unset options are nil.
// Options marshal to the JSON k6 reads.
type Options struct {
	Batch                    *int64                 `json:"batch,omitempty"`
	BatchPerHost             *int64                 `json:"batchPerHost,omitempty"`
	BlacklistIPs             []string               `json:"blacklistIPs,omitempty"`
	BlockHostnames           []string               `json:"blockHostnames,omitempty"`
	Cloud                    map[string]any         `json:"cloud,omitempty"`
	DiscardResponseBodies    *bool                  `json:"discardResponseBodies,omitempty"`
	DNS                      *DNS                   `json:"dns,omitempty"`
	Duration                 *Duration              `json:"duration,omitempty"`
	ExecutionSegment         *string                `json:"executionSegment,omitempty"`
	ExecutionSegmentSequence *string                `json:"executionSegmentSequence,omitempty"`
	Ext                      map[string]any         `json:"ext,omitempty"`
	Hosts                    map[string]string      `json:"hosts,omitempty"`
	HTTPDebug                *string                `json:"httpDebug,omitempty"`
	InsecureSkipTLSVerify    *bool                  `json:"insecureSkipTLSVerify,omitempty"`
	Iterations               *int64                 `json:"iterations,omitempty"`
	MaxRedirects             *int64                 `json:"maxRedirects,omitempty"`
	MetricSamplesBufferSize  *int64                 `json:"metricSamplesBufferSize,omitempty"`
	MinIterationDuration     *Duration              `json:"minIterationDuration,omitempty"`
	NoConnectionReuse        *bool                  `json:"noConnectionReuse,omitempty"`
	NoCookiesReset           *bool                  `json:"noCookiesReset,omitempty"`
	NoSetup                  *bool                  `json:"noSetup,omitempty"`
	NoTeardown               *bool                  `json:"noTeardown,omitempty"`
	NoVUConnectionReuse      *bool                  `json:"noVUConnectionReuse,omitempty"`
	Paused                   *bool                  `json:"paused,omitempty"`
	RPS                      *int64                 `json:"rps,omitempty"`
	Scenarios                map[string]Scenario    `json:"scenarios,omitempty"`
	SetupTimeout             *Duration              `json:"setupTimeout,omitempty"`
	Stages                   []Stage                `json:"stages,omitempty"`
	SummaryTimeUnit          *string                `json:"summaryTimeUnit,omitempty"`
	SummaryTrendStats        []string               `json:"summaryTrendStats,omitempty"`
	SystemTags               []string               `json:"systemTags,omitempty"`
	Tags                     map[string]string      `json:"tags,omitempty"`
	TeardownTimeout          *Duration              `json:"teardownTimeout,omitempty"`
	Thresholds               map[string][]Threshold `json:"thresholds,omitempty"`
	Throw                    *bool                  `json:"throw,omitempty"`
	TLSAuth                  []TLSAuth              `json:"tlsAuth,omitempty"`
	TLSCipherSuites          []string               `json:"tlsCipherSuites,omitempty"`
	TLSVersion               *TLSVersion            `json:"tlsVersion,omitempty"`
	UserAgent                *string                `json:"userAgent,omitempty"`
	VUs                      *int64                 `json:"vus,omitempty"`
}

// DNS is the `dns` option: how long resolved addresses are cached, which
// of several addresses is used, and which IP version is preferred.
type DNS struct {
	// TTL is "0" (no cache), "inf" (the whole test) or a duration (a bare
	// number is milliseconds).
	TTL    string `json:"ttl,omitempty"`
	Select string `json:"select,omitempty"`
	Policy string `json:"policy,omitempty"`
}

// DNS select and policy values.
var (
	DNSSelects  = []string{"first", "random", "roundRobin"}
	DNSPolicies = []string{"preferIPv4", "preferIPv6", "onlyIPv4", "onlyIPv6", "any"}
)

// TLSAuth is one client certificate of the `tlsAuth` option (PEM).
type TLSAuth struct {
	Domains  []string `json:"domains,omitempty"`
	Cert     string   `json:"cert"`
	Key      string   `json:"key"`
	Password string   `json:"password,omitempty"`
}

// TLSVersion is the `tlsVersion` option: one version (Min == Max, written
// as a string) or a range.
type TLSVersion struct {
	Min, Max string
}

// TLSVersions are the version names k6 accepts, oldest first.
var TLSVersions = []string{"ssl3.0", "tls1.0", "tls1.1", "tls1.2", "tls1.3"}

// MarshalJSON writes one version as a string, a range as {min, max}.
func (t TLSVersion) MarshalJSON() ([]byte, error) {
	if t.Min == t.Max {
		return json.Marshal(t.Min)
	}
	return json.Marshal(map[string]string{"min": t.Min, "max": t.Max})
}

// UnmarshalJSON reads a version string or a {min, max} object.
func (t *TLSVersion) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		t.Min, t.Max = s, s
		return nil
	}
	var r struct{ Min, Max string }
	if err := json.Unmarshal(b, &r); err != nil {
		return errors.New(`tlsVersion must be a version such as "tls1.2" or {min, max}`)
	}
	t.Min, t.Max = r.Min, r.Max
	return nil
}

// SystemTags are the tags k6 can attach to its samples by itself.
var SystemTags = []string{
	"check", "error", "error_code", "expected_response", "group", "ip", "iter", "method", "name",
	"ocsp_status", "proto", "scenario", "service", "status", "subproto", "tls_version", "url", "vu",
}

// SummaryTimeUnits are the values of `summaryTimeUnit`.
var SummaryTimeUnits = []string{"s", "ms", "us"}

// notScriptOptions are names k6 users meet (as flags, in config files, in
// older k6) that k6 does not read from a script, each with a hint.
var notScriptOptions = map[string]string{
	"linger":               "it is the --linger flag of k6 run",
	"noUsageReport":        "set it in k6's config file or with --no-usage-report",
	"vusMax":               "k6 no longer has it: arrival-rate scenarios take maxVUs",
	"localIPs":             "it is the --local-ips flag of k6 run",
	"consoleOutput":        "it is the --console-output flag of k6 run",
	"handleSummaryTimeout": "k6 does not read it from a script",
	"summaryExport":        "it is the --summary-export flag of k6 run",
	"noThresholds":         "it is the --no-thresholds flag of k6 run",
	"address":              "it is the --address flag of k6 run",
}

func unknownOption(key string) string {
	if hint, ok := notScriptOptions[key]; ok {
		return fmt.Sprintf("%q is not an option a k6 script can set: %s", key, hint)
	}
	msg := fmt.Sprintf("unknown k6 option %q", key)
	names := slices.Concat(sortedKeys(optionDecoders), []string{"scenarios", "thresholds"})
	if s := suggest.Closest(key, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// optionDecoder converts one option's JSON value into o. A returned error
// is a value of the wrong shape, reported at the option's key; finer
// problems (an unknown field of a nested object) are added to v at their
// own path.
type optionDecoder func(v *validator, keys []string, o *Options, x any) error

func intOpt(field func(*Options) **int64) optionDecoder {
	return func(_ *validator, _ []string, o *Options, x any) error {
		n, err := toInt(x)
		if err == nil {
			*field(o) = &n
		}
		return err
	}
}

func boolOpt(field func(*Options) **bool) optionDecoder {
	return func(_ *validator, _ []string, o *Options, x any) error {
		b, err := toBool(x)
		if err == nil {
			*field(o) = &b
		}
		return err
	}
}

func stringOpt(field func(*Options) **string) optionDecoder {
	return func(_ *validator, _ []string, o *Options, x any) error {
		s, err := toString(x)
		if err == nil {
			*field(o) = &s
		}
		return err
	}
}

func durationOpt(field func(*Options) **Duration) optionDecoder {
	return func(_ *validator, _ []string, o *Options, x any) error {
		d, err := toDuration(x)
		if err == nil {
			*field(o) = &d
		}
		return err
	}
}

func stringsOpt(field func(*Options) *[]string) optionDecoder {
	return func(_ *validator, _ []string, o *Options, x any) (err error) {
		*field(o), err = toStrings(x)
		return err
	}
}

func stringMapOpt(field func(*Options) *map[string]string) optionDecoder {
	return func(_ *validator, _ []string, o *Options, x any) (err error) {
		*field(o), err = toStringMap(x)
		return err
	}
}

func objectOpt(field func(*Options) *map[string]any) optionDecoder {
	return func(_ *validator, _ []string, o *Options, x any) (err error) {
		*field(o), err = toObject(x)
		return err
	}
}

// optionDecoders has every option a script can set but scenarios and
// thresholds, which are decoded piecewise.
var optionDecoders = map[string]optionDecoder{
	"batch":                    intOpt(func(o *Options) **int64 { return &o.Batch }),
	"batchPerHost":             intOpt(func(o *Options) **int64 { return &o.BatchPerHost }),
	"blacklistIPs":             stringsOpt(func(o *Options) *[]string { return &o.BlacklistIPs }),
	"blockHostnames":           stringsOpt(func(o *Options) *[]string { return &o.BlockHostnames }),
	"cloud":                    objectOpt(func(o *Options) *map[string]any { return &o.Cloud }),
	"discardResponseBodies":    boolOpt(func(o *Options) **bool { return &o.DiscardResponseBodies }),
	"dns":                      decodeDNS,
	"duration":                 durationOpt(func(o *Options) **Duration { return &o.Duration }),
	"executionSegment":         stringOpt(func(o *Options) **string { return &o.ExecutionSegment }),
	"executionSegmentSequence": stringOpt(func(o *Options) **string { return &o.ExecutionSegmentSequence }),
	"ext":                      objectOpt(func(o *Options) *map[string]any { return &o.Ext }),
	"hosts":                    stringMapOpt(func(o *Options) *map[string]string { return &o.Hosts }),
	"httpDebug":                stringOpt(func(o *Options) **string { return &o.HTTPDebug }),
	"insecureSkipTLSVerify":    boolOpt(func(o *Options) **bool { return &o.InsecureSkipTLSVerify }),
	"iterations":               intOpt(func(o *Options) **int64 { return &o.Iterations }),
	"maxRedirects":             intOpt(func(o *Options) **int64 { return &o.MaxRedirects }),
	"metricSamplesBufferSize":  intOpt(func(o *Options) **int64 { return &o.MetricSamplesBufferSize }),
	"minIterationDuration":     durationOpt(func(o *Options) **Duration { return &o.MinIterationDuration }),
	"noConnectionReuse":        boolOpt(func(o *Options) **bool { return &o.NoConnectionReuse }),
	"noCookiesReset":           boolOpt(func(o *Options) **bool { return &o.NoCookiesReset }),
	"noSetup":                  boolOpt(func(o *Options) **bool { return &o.NoSetup }),
	"noTeardown":               boolOpt(func(o *Options) **bool { return &o.NoTeardown }),
	"noVUConnectionReuse":      boolOpt(func(o *Options) **bool { return &o.NoVUConnectionReuse }),
	"paused":                   boolOpt(func(o *Options) **bool { return &o.Paused }),
	"rps":                      intOpt(func(o *Options) **int64 { return &o.RPS }),
	"setupTimeout":             durationOpt(func(o *Options) **Duration { return &o.SetupTimeout }),
	"stages": func(v *validator, keys []string, o *Options, x any) (err error) {
		o.Stages, err = v.stages(keys, x)
		return err
	},
	"summaryTimeUnit":   stringOpt(func(o *Options) **string { return &o.SummaryTimeUnit }),
	"summaryTrendStats": stringsOpt(func(o *Options) *[]string { return &o.SummaryTrendStats }),
	"systemTags":        stringsOpt(func(o *Options) *[]string { return &o.SystemTags }),
	"tags":              stringMapOpt(func(o *Options) *map[string]string { return &o.Tags }),
	"teardownTimeout":   durationOpt(func(o *Options) **Duration { return &o.TeardownTimeout }),
	"throw":             boolOpt(func(o *Options) **bool { return &o.Throw }),
	"tlsAuth":           decodeTLSAuth,
	"tlsCipherSuites":   stringsOpt(func(o *Options) *[]string { return &o.TLSCipherSuites }),
	"tlsVersion":        decodeTLSVersion,
	"userAgent":         stringOpt(func(o *Options) **string { return &o.UserAgent }),
	"vus":               intOpt(func(o *Options) **int64 { return &o.VUs }),
}

// fields walks a nested object: each known field goes to its setter, each
// unknown one is a problem at its own path.
func (v *validator) fields(keys []string, m map[string]any, set map[string]func(any) error) error {
	for _, k := range sortedKeys(m) {
		f, ok := set[k]
		if !ok {
			v.add(join(keys, k), nil, "unknown field %q: %s takes %s", k, FormatPath(keys), quoteList(sortedKeys(set)))
			continue
		}
		if err := f(m[k]); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func decodeDNS(v *validator, keys []string, o *Options, x any) error {
	m, err := toObject(x)
	if err != nil {
		return err
	}
	d := &DNS{}
	err = v.fields(keys, m, map[string]func(any) error{
		"ttl":    func(x any) (err error) { d.TTL, err = toString(x); return err },
		"select": func(x any) (err error) { d.Select, err = toString(x); return err },
		"policy": func(x any) (err error) { d.Policy, err = toString(x); return err },
	})
	if err == nil {
		o.DNS = d
	}
	return err
}

func decodeTLSAuth(v *validator, keys []string, o *Options, x any) error {
	l, err := toList(x)
	if err != nil {
		return err
	}
	auth := make([]TLSAuth, len(l))
	for i, item := range l {
		m, err := toObject(item)
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		a := &auth[i]
		err = v.fields(join(keys, fmt.Sprint(i)), m, map[string]func(any) error{
			"domains":  func(x any) (err error) { a.Domains, err = toStrings(x); return err },
			"cert":     func(x any) (err error) { a.Cert, err = toString(x); return err },
			"key":      func(x any) (err error) { a.Key, err = toString(x); return err },
			"password": func(x any) (err error) { a.Password, err = toString(x); return err },
		})
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	o.TLSAuth = auth
	return nil
}

func decodeTLSVersion(v *validator, keys []string, o *Options, x any) error {
	if s, ok := x.(string); ok {
		o.TLSVersion = &TLSVersion{Min: s, Max: s}
		return nil
	}
	m, err := toObject(x)
	if err != nil {
		return typeError(`a version such as "tls1.2", or {min, max}`, x)
	}
	t := &TLSVersion{}
	err = v.fields(keys, m, map[string]func(any) error{
		"min": func(x any) (err error) { t.Min, err = toString(x); return err },
		"max": func(x any) (err error) { t.Max, err = toString(x); return err },
	})
	if err == nil {
		o.TLSVersion = t
	}
	return err
}

// checkOptions applies the rules of single options (the shortcuts are
// checked with the scenario they stand for).
func (v *validator) checkOptions(o *Options) {
	for _, c := range []struct {
		key string
		n   *int64
		min int64
	}{
		{"batch", o.Batch, 0}, {"batchPerHost", o.BatchPerHost, 0}, {"maxRedirects", o.MaxRedirects, 0},
		{"rps", o.RPS, 0}, {"metricSamplesBufferSize", o.MetricSamplesBufferSize, 1},
	} {
		if c.n != nil && *c.n < c.min {
			v.add([]string{c.key}, nil, "%s must be at least %d, not %d", c.key, c.min, *c.n)
		}
	}
	for _, c := range []struct {
		key string
		d   *Duration
	}{{"setupTimeout", o.SetupTimeout}, {"teardownTimeout", o.TeardownTimeout}} {
		if c.d != nil && *c.d <= 0 {
			v.add([]string{c.key}, nil, "%s must be positive, not %s", c.key, c.d)
		}
	}
	if o.MinIterationDuration != nil && *o.MinIterationDuration < 0 {
		v.add([]string{"minIterationDuration"}, nil, "minIterationDuration must not be negative")
	}
	for i, s := range o.BlacklistIPs {
		if _, _, err := net.ParseCIDR(s); err != nil {
			v.add([]string{"blacklistIPs", fmt.Sprint(i)}, err, "%q is not an IP range in CIDR notation, such as \"10.0.0.0/8\"", s)
		}
	}
	for i, s := range o.BlockHostnames {
		if rest, _ := strings.CutPrefix(s, "*"); rest == "" || strings.Contains(rest, "*") {
			v.add([]string{"blockHostnames", fmt.Sprint(i)}, nil, "%q is not a hostname pattern: a hostname, optionally with one leading \"*\" such as \"*.example.com\"", s)
		}
	}
	for _, h := range sortedKeys(o.Hosts) {
		if h == "" || o.Hosts[h] == "" {
			v.add([]string{"hosts"}, nil, "hosts maps a hostname to an address: %q: %q has an empty side", h, o.Hosts[h])
		}
	}
	if d := o.DNS; d != nil {
		if d.TTL != "" && d.TTL != "inf" && d.TTL != "0" {
			if _, err := toDuration(d.TTL); err != nil {
				v.add([]string{"dns", "ttl"}, err, "ttl must be \"0\" (no cache), \"inf\" or a duration such as \"5m\", not %q", d.TTL)
			}
		}
		if d.Select != "" && !slices.Contains(DNSSelects, d.Select) {
			v.add([]string{"dns", "select"}, nil, "select must be %s, not %q", quoteList(DNSSelects), d.Select)
		}
		if d.Policy != "" && !slices.Contains(DNSPolicies, d.Policy) {
			v.add([]string{"dns", "policy"}, nil, "policy must be %s, not %q", quoteList(DNSPolicies), d.Policy)
		}
	}
	for i, a := range o.TLSAuth {
		for _, f := range []struct{ name, pem string }{{"cert", a.Cert}, {"key", a.Key}} {
			if block, _ := pem.Decode([]byte(f.pem)); block == nil {
				v.add([]string{"tlsAuth", fmt.Sprint(i), f.name}, nil, "%s must hold a PEM block (such as open(\"client.pem\"))", f.name)
			}
		}
	}
	for i, s := range o.TLSCipherSuites {
		if !knownCipherSuite(s) {
			v.add([]string{"tlsCipherSuites", fmt.Sprint(i)}, nil, "unknown cipher suite %q (names as in Go's crypto/tls, such as \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\")", s)
		}
	}
	if t := o.TLSVersion; t != nil {
		min, max := slices.Index(TLSVersions, t.Min), slices.Index(TLSVersions, t.Max)
		switch {
		case t.Min == t.Max && min < 0:
			v.add([]string{"tlsVersion"}, nil, "unknown TLS version %q: use %s", t.Min, quoteList(TLSVersions))
		case min < 0:
			v.add([]string{"tlsVersion", "min"}, nil, "unknown TLS version %q: use %s", t.Min, quoteList(TLSVersions))
		case max < 0:
			v.add([]string{"tlsVersion", "max"}, nil, "unknown TLS version %q: use %s", t.Max, quoteList(TLSVersions))
		case min > max:
			v.add([]string{"tlsVersion"}, nil, "min %q is newer than max %q", t.Min, t.Max)
		}
	}
	for i, s := range o.SystemTags {
		if !slices.Contains(SystemTags, s) {
			v.add([]string{"systemTags", fmt.Sprint(i)}, nil, "unknown system tag %q: k6's system tags are %s", s, strings.Join(SystemTags, ", "))
		}
	}
	if u := o.SummaryTimeUnit; u != nil && !slices.Contains(SummaryTimeUnits, *u) {
		v.add([]string{"summaryTimeUnit"}, nil, "summaryTimeUnit must be %s, not %q", quoteList(SummaryTimeUnits), *u)
	}
	for i, s := range o.SummaryTrendStats {
		if err := checkTrendStat(s); err != nil {
			v.add([]string{"summaryTrendStats"}, err, "entry %d: %v", i, err)
		}
	}
	v.checkSegments(o)
}

func knownCipherSuite(name string) bool {
	for _, s := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		if s.Name == name {
			return true
		}
	}
	return false
}

// MarshalJSON writes a threshold in k6's short form (the expression as a
// string) unless it aborts the run or delays that, and never HTML-escapes
// the expression (an encoder that escapes HTML still applies its escapes).
func (t Threshold) MarshalJSON() ([]byte, error) {
	var v any = t.Threshold
	if t.AbortOnFail || t.DelayAbortEval != nil {
		type object Threshold // without this method
		v = object(t)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads either form of a threshold.
func (t *Threshold) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = Threshold{Threshold: s}
		return nil
	}
	type object Threshold
	var o object
	if err := json.Unmarshal(b, &o); err != nil {
		return errors.New("a threshold must be an expression or {threshold, abortOnFail, delayAbortEval}")
	}
	*t = Threshold(o)
	return nil
}
