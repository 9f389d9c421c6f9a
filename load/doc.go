// Package load is faultline's own load engine. It runs a compiled load — the
// one k6 scenario of a scenario's options and its weighted request mix, as
// compiler/k6 embeds them in script.js — with the executor semantics k6's
// documentation defines, in-process, and hands every request's sample to a
// Sink as it ends. No JavaScript runs: an iteration is one request of the
// mix, picked by weight, sent, and checked against its expectations, which
// is exactly what the compiled script's default function does.
//
// # Executor semantics
//
//  1. Every executor waits for its startTime (an offset from the engine's
//     start), then runs until its regular end; after it, no new iteration
//     starts and the iterations still running get gracefulStop to finish;
//     what is still running then is interrupted (counted, no sample).
//  2. constant-vus: vus VUs each loop iterations back to back for duration
//     (a closed model: a slow response delays the VU's next request).
//  3. ramping-vus: the VU count starts at startVUs and follows each stage
//     linearly to its target, in whole VUs: during a stage from a to b over
//     d, the count at t is a + trunc((b-a)·t/d), so it changes by one at
//     t = d·i/|b-a|. A VU removed by a ramp-down starts no new iteration
//     and gets gracefulRampDown to finish the one it runs. The regular end
//     is the end of the last stage.
//  4. per-vu-iterations: vus VUs each run iterations iterations; the
//     regular end is when all are done or maxDuration has passed.
//  5. shared-iterations: vus VUs share iterations iterations, each taking
//     the next as soon as it is free; regular end as for per-vu-iterations.
//  6. constant-arrival-rate: an open model. Iteration i (0, 1, 2, ...)
//     starts at i·timeUnit/rate whatever the latency, for duration, on a
//     free VU of the pool: preAllocatedVUs are made before the start; when
//     none is free another is made, up to maxVUs; when maxVUs are all busy
//     the iteration is dropped and counted (k6's dropped_iterations).
//  7. ramping-arrival-rate: as 6, with the rate (iterations per timeUnit)
//     starting at startRate and following each stage linearly; iteration i
//     starts when the integral of the rate from the start reaches i.
//
// Each VU has its own connections (one HTTP/1.1 keep-alive connection per
// host, reused across iterations, as a k6 VU's client does); https goes
// through Go's net/http with HTTP/2 when the server offers it. A request's
// sample is placed by its START (when it began to be written on an
// established connection; connecting is not part of its duration, as in
// k6's http_req_duration).
package load
