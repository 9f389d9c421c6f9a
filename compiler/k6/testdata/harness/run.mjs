// Drives a compiled script under node with the k6 stand-ins (one VU): one default()
// iteration per entry of input.iterations, at that many ms after the
// scenario's start, then handleSummary(input.summary) when given. Prints
// what the script did as JSON.
//
// Usage: node run.mjs script.js < input.json
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { record } from 'k6/record';

const input = JSON.parse(readFileSync(0, 'utf8'));
globalThis.__ENV = input.env || {};
const randoms = input.random || [];
Math.random = () => (randoms.length > 0 ? randoms.shift() : 0);
Date.now = () => record.now;
if (input.status) {
  record.respond = (req) => ({ status: input.status, body: req.body === null ? '' : String(req.body) });
}

if (input.grpcStatus) {
  record.grpcRespond = (call) => ({ status: input.grpcStatus, message: null, headers: {}, trailers: {}, error: { code: input.grpcStatus } });
}
record.grpcConnectFailures = input.grpcConnectFailures || 0;

const script = await import(pathToFileURL(process.argv[2]).href);
const start = 1_000_000;
for (const elapsed of input.iterations || []) {
  record.startTime = start;
  record.now = start + elapsed;
  script.default();
}
const out = {
  requests: record.requests, checks: record.checks, grpc: record.grpc, metrics: record.metrics,
  summary: null, options: script.options,
};
if (input.summary) {
  out.summary = script.handleSummary(input.summary);
}
process.stdout.write(JSON.stringify(out));
