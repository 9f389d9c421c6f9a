// Stand-in for "k6/http": request records the request and returns
// record.respond's answer; expectedStatuses returns what it was given.
import { record } from './record.js';

export default {
  request(method, url, body, params) {
    const req = { method, url, body: body === undefined ? null : body, params: params || null };
    record.requests.push(JSON.parse(JSON.stringify(req)));
    return record.respond(req);
  },
  expectedStatuses(...statuses) {
    return { expectedStatuses: statuses };
  },
};
