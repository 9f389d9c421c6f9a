// Stand-in for "k6/metrics": custom metrics record every value added.
import { record } from './record.js';

class Metric {
  constructor(name) {
    this.name = name;
  }
  add(value, tags) {
    record.metrics.push({ metric: this.name, value: Number(value), tags: tags || null });
  }
}

export class Counter extends Metric {}
export class Rate extends Metric {}
export class Trend extends Metric {}
export class Gauge extends Metric {}
