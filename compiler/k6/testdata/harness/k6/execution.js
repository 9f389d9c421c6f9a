// Stand-in for "k6/execution": the scenario's start time is the driver's.
import { record } from './record.js';

export default {
  scenario: {
    get startTime() {
      return record.startTime;
    },
  },
};
