package schema

// Notes lists what vet says without failing: a scenario that relies on a
// default of faultline's that differs from Chaos Mesh's own, so that a
// reader who knows Chaos Mesh is not misled. Each note is positioned at the
// field that takes the default and has Severity SeverityNote.
func Notes(loaded []*Loaded) Diagnostics {
	var ds Diagnostics
	for _, l := range loaded {
		s := l.Scenario
		for _, n := range sortedKeys(s.Faults) {
			f := s.Faults[n]
			if p := f.NetworkPartition; p != nil && p.Direction == "" {
				d := l.Pos("faults."+n+".networkPartition",
					`direction is not set, so the partition cuts traffic both ways (faultline's default, "both"); Chaos Mesh's default is "to", which cuts only the target's traffic to the peer: write direction "both" to keep this, or "to" for Chaos Mesh's`)
				d.Severity = SeverityNote
				ds = append(ds, d)
			}
		}
	}
	return ds.Sort()
}
