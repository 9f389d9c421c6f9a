package plan

import (
	"strings"
	"testing"
	"time"

	"faultline.dev/faultline/schema"
)

func TestNew(t *testing.T) {
	d := func(s string) schema.Duration { v, _ := time.ParseDuration(s); return schema.Duration(v) }
	base := func() *schema.Scenario {
		return &schema.Scenario{Name: "s", Version: "1.0.0",
			Load: schema.Load{Executor: schema.ConstantVUs, VUs: 1, Duration: d("60s"), Requests: []schema.Request{{Path: "/"}}}}
	}
	cases := []struct {
		name     string
		faults   map[string]schema.Fault
		within   string
		phases   string
		segments string
	}{
		{"no faults", nil, "", "steady[0s,1m)", "steady[0s,1m)"},
		{"one fault", map[string]schema.Fault{"a": {Start: d("10s"), Duration: d("20s"), PodKill: &schema.PodKill{}}}, "5s",
			"steady[0s,10s) fault[10s,30s) recovery[30s,1m)judge35s", "steady[0s,10s) fault[10s,30s)a recovery[30s,1m)"},
		{"overlap and gap", map[string]schema.Fault{
			"b": {Start: d("10s"), Duration: d("20s"), PodKill: &schema.PodKill{}},
			"a": {Start: d("20s"), Duration: d("5s"), PodKill: &schema.PodKill{}},
			"c": {Start: d("40s"), Duration: d("10s"), PodKill: &schema.PodKill{}}}, "",
			"steady[0s,10s) fault[10s,50s) recovery[50s,1m)judge50s",
			"steady[0s,10s) fault[10s,20s)b fault[20s,25s)b,a fault[25s,30s)b fault[30s,40s) fault[40s,50s)c recovery[50s,1m)"},
		{"fault at zero to the end", map[string]schema.Fault{"a": {Start: 0, Duration: d("60s"), PodKill: &schema.PodKill{}}}, "",
			"fault[0s,1m)", "fault[0s,1m)a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			s.Faults = tc.faults
			if tc.within != "" {
				s.SLOs = &schema.SLOs{Recovery: &schema.RecoverySLO{Within: d(tc.within)}}
			}
			p, err := New(s)
			if err != nil {
				t.Fatal(err)
			}
			var ph, sg []string
			for _, x := range p.Phases {
				str := x.Name + "[" + x.Start.String() + "," + x.End.String() + ")"
				if x.Name == Recovery {
					str += "judge" + x.JudgeFrom.String()
				}
				ph = append(ph, str)
			}
			for _, x := range p.Segments {
				sg = append(sg, x.Phase+"["+x.Start.String()+","+x.End.String()+")"+strings.Join(x.Active, ","))
			}
			if got := strings.Join(ph, " "); got != tc.phases {
				t.Errorf("phases %s, want %s", got, tc.phases)
			}
			if got := strings.Join(sg, " "); got != tc.segments {
				t.Errorf("segments %s, want %s", got, tc.segments)
			}
			for i, f := range p.Faults {
				if f.Index != i+1 {
					t.Errorf("fault %s index %d", f.Name, f.Index)
				}
			}
		})
	}
}

func TestContentHashStable(t *testing.T) {
	s := &schema.Scenario{Name: "s", Version: "1.0.0", Labels: map[string]string{"b": "2", "a": "1"}}
	h1, _ := ContentHash(s)
	h2, _ := ContentHash(s)
	s.Description = "changed"
	h3, _ := ContentHash(s)
	if h1 != h2 || h1 == h3 || !strings.HasPrefix(h1, "sha256:") {
		t.Errorf("hashes %s %s %s", h1, h2, h3)
	}
}
