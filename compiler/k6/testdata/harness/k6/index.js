// Stand-in for "k6": check runs every checker and records its result.
import { record } from './record.js';

export function check(val, sets, tags) {
  let all = true;
  for (const name of Object.keys(sets)) {
    const ok = sets[name](val) === true;
    record.checks.push({ name, ok, tags: tags || null });
    all = all && ok;
  }
  return all;
}
