// What the script did, and the clock and answers the driver sets.
export const record = {
  now: 0, // what Date.now() returns
  startTime: 0, // exec.scenario.startTime
  requests: [],
  checks: [],
  grpc: [], // k6/net/grpc: load, connect and invoke, in order
  metrics: [], // k6/metrics: every value added to a custom metric
  grpcConnectFailures: 0, // the first that many connects throw
  // respond answers a request: by default 200 with the request body echoed.
  respond: (req) => ({ status: 200, body: req.body === null ? '' : String(req.body) }),
  // grpcRespond answers a gRPC call: by default OK with the request echoed.
  grpcRespond: (call) => ({ status: 0, message: call.request, headers: {}, trailers: {}, error: null }),
};
