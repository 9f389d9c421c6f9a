package k6

import (
	"strings"
	"time"

	"faultline.dev/faultline/compiler/plan"
)

// segment is a stretch of the timeline as the script sees it, in ms.
type segment struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Phase string  `json:"phase"`
	Fault string  `json:"fault"`
}

// timeline makes the script's segments: the plan's, with the recovery
// phase split at its judgeFrom into recovery-grace and recovery.
func (c *compilation) timeline() {
	judge := plan.Duration(-1)
	if ph, ok := c.p.Phase(plan.Recovery); ok && ph.JudgeFrom > ph.Start {
		judge = ph.JudgeFrom
	}
	for _, s := range c.p.Segments {
		fault := "none"
		if len(s.Active) > 0 {
			fault = strings.Join(s.Active, "+")
		}
		if s.Phase == plan.Recovery && judge > s.Start {
			if judge >= s.End {
				c.segments = append(c.segments, segment{ms(s.Start), ms(s.End), GracePhase, fault})
				continue
			}
			c.segments = append(c.segments, segment{ms(s.Start), ms(judge), GracePhase, fault})
			s.Start = judge
		}
		c.segments = append(c.segments, segment{ms(s.Start), ms(s.End), s.Phase, fault})
	}
}

// ms is a plan offset in milliseconds.
func ms(d plan.Duration) float64 { return float64(d) / float64(time.Millisecond) }
