// 6. digest jobs/s end to end vs the crypto-bound rate of one job: NOT
// MEASURED YET. Each request must be sealed by the SDK for its own request id
// (the seal's context names it and the device signs it), and the SDK first
// decrypts the chat's unread messages locally, so the load generator would
// spend more CPU per job than the worker; it needs requests sealed before the
// clock starts (as services/digest/bench/jobs.bench.ts does in-process) and
// the worker's crypto timed in-process. Until then the table says so, and
// `npm run bench -w @bil/digest` gives the end-to-end digest figures.
import type { Ctx, Outcome } from '../context.js';

export async function digest(_ctx: Ctx): Promise<Outcome> {
  return {
    tables: [
      {
        name: 'digest',
        title: 'digest jobs/s vs the crypto-bound rate of one job',
        rows: [{ label: 'jobs/s end to end', project: 'not measured', raw: 'not measured', ratio: '—' }],
        notes: ['not measured by bench:e2e yet (see bench/src/measure/digest.ts); `npm run bench -w @bil/digest` measures digest jobs/s end to end in-process.'],
      },
    ],
    data: { measured: false },
  };
}
