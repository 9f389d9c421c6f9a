package k6opts

import (
	"fmt"
	"math/big"
	"strings"
)

// parseSegmentValue reads one point of an execution segment: a fraction
// ("1/4"), a decimal ("0.25") or a percentage ("25%"), from 0 to 1.
func parseSegmentValue(s string) (*big.Rat, error) {
	r, percent := new(big.Rat), false
	if p, ok := strings.CutSuffix(s, "%"); ok {
		s, percent = p, true
	}
	if _, ok := r.SetString(s); !ok || strings.ContainsAny(s, " \t") {
		return nil, fmt.Errorf("%q is not a fraction (1/4), decimal (0.25) or percentage (25%%)", s)
	}
	if percent {
		r.Quo(r, big.NewRat(100, 1))
	}
	if r.Sign() < 0 || r.Cmp(big.NewRat(1, 1)) > 0 {
		return nil, fmt.Errorf("%s is outside 0 to 1", r.RatString())
	}
	return r, nil
}

// parseSegment reads an execution segment "from:to", or "to" for "0:to".
func parseSegment(s string) (from, to *big.Rat, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		a, b = "0", a
	}
	if from, err = parseSegmentValue(a); err != nil {
		return nil, nil, err
	}
	if to, err = parseSegmentValue(b); err != nil {
		return nil, nil, err
	}
	if from.Cmp(to) >= 0 {
		return nil, nil, fmt.Errorf("the segment's start %s is not before its end %s", from.RatString(), to.RatString())
	}
	return from, to, nil
}

// checkSegments checks executionSegment and executionSegmentSequence: the
// segment is a part of [0, 1]; the sequence is increasing points from 0 to
// 1; the segment is one step of the sequence.
func (v *validator) checkSegments(o *Options) {
	var from, to *big.Rat
	if o.ExecutionSegment != nil {
		var err error
		if from, to, err = parseSegment(*o.ExecutionSegment); err != nil {
			v.add([]string{"executionSegment"}, err, "executionSegment %q: %v", *o.ExecutionSegment, err)
		}
	}
	if o.ExecutionSegmentSequence == nil {
		return
	}
	var seq []*big.Rat
	for _, part := range strings.Split(*o.ExecutionSegmentSequence, ",") {
		r, err := parseSegmentValue(part)
		if err != nil {
			v.add([]string{"executionSegmentSequence"}, err, "executionSegmentSequence: %v", err)
			return
		}
		if len(seq) > 0 && r.Cmp(seq[len(seq)-1]) <= 0 {
			v.add([]string{"executionSegmentSequence"}, nil, "executionSegmentSequence must increase: %s after %s", r.RatString(), seq[len(seq)-1].RatString())
			return
		}
		seq = append(seq, r)
	}
	if len(seq) < 2 {
		v.add([]string{"executionSegmentSequence"}, nil, "executionSegmentSequence needs at least two points, such as \"0,1/2,1\"")
		return
	}
	if from == nil {
		return
	}
	for i := 1; i < len(seq); i++ {
		if seq[i-1].Cmp(from) == 0 && seq[i].Cmp(to) == 0 {
			return
		}
	}
	v.add([]string{"executionSegment"}, nil, "executionSegment %q is not a step of executionSegmentSequence %q", *o.ExecutionSegment, *o.ExecutionSegmentSequence)
}
