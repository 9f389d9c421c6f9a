// Package k6opts is a typed model of k6's options (the JSON form of a
// script's `export const options`) and of the rules k6's documentation
// gives for them, checked in-process and offline, without k6.
//
// Validate checks options the way `k6 run` would before it starts:
//
//  1. Each option is decoded on its own, so a value of the wrong type is
//     reported at its key; an option k6 does not read from a script is a
//     problem (k6 only warns).
//  2. The shortcut options (vus, duration, iterations, stages) stand for one
//     scenario named "default"; they cannot be combined with `scenarios`,
//     nor iterations or duration with stages.
//  3. Each scenario is decoded into a Scenario. A field its executor does
//     not take is reported at the field (see Fields and CommonFields); the
//     executor's rules (Scenario.Validate) are reported at the field they
//     concern, such as `scenarios.load.maxVUs` or `stages[1].target`.
//  4. Every threshold is parsed: the metric name with its optional tag
//     filter (`http_req_duration{phase:fault}`), the metric's type (k6's
//     built-in metrics, or custom ones declared with WithMetric), and each
//     expression `aggregation operator value` against the aggregations that
//     type has.
//
// Where k6 lets a value through that cannot mean anything (a negative
// batch, a percentile above 100, an unknown system tag, a threshold object
// with a misspelt key), this model reports it: it is meant for options a
// program writes, where such a value is a bug.
//
// Every problem names the options path it concerns, such as
// `scenarios.load.maxVUs` or `thresholds["http_req_duration{phase:fault}"][0]`,
// so a caller can map it back to the position in the scenario it compiled
// from.
package k6opts
