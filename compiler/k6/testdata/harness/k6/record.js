// What the script did, and the clock and answers the driver sets.
export const record = {
  now: 0, // what Date.now() returns
  startTime: 0, // exec.scenario.startTime
  requests: [],
  checks: [],
  // respond answers a request: by default 200 with the request body echoed.
  respond: (req) => ({ status: 200, body: req.body === null ? '' : String(req.body) }),
};
