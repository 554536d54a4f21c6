import { measureThroughput } from './throughput.ts';
import { measureUtilization } from './utilization.ts';

/**
 * `npm run bench`: the pipeline's own speed, each figure against its goal, measured in this run.
 * Figures depend on the machine; compare them within one run, not across machines.
 */
const json = process.argv.includes('--json');

const utilization = await measureUtilization(8, 240, 400);
const throughput = await measureThroughput(3000, 16);

const report = { utilization, throughput };
if (json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const { rawNoop, rawPost, pipeline } = throughput;
  const ratio = pipeline.perSecond / rawNoop.perSecond;
  const lines = [
    `channel utilization (${utilization.channels} channels, ${utilization.faxes} faxes, ${utilization.callMs} ms calls): ${pct(utilization.utilization)}   goal >= 95 %   ${utilization.utilization >= 0.95 ? 'met' : 'NOT MET'}`,
    `release -> next dispatch: p50 ${ms(utilization.releaseToSendP50Ms)}, p99 ${ms(utilization.releaseToSendP99Ms)}   goal p99 < 100 ms   ${utilization.releaseToSendP99Ms < 100 ? 'met' : 'NOT MET'}`,
    `max calls in flight at the simulator: ${utilization.maxInFlight} (limit ${utilization.channels})`,
    `dispatch throughput, limits off (${throughput.jobs} jobs, concurrency ${throughput.concurrency}):`,
    `  ours ${pipeline.perSecond.toFixed(0)} faxes/s vs raw BullMQ no-op ${rawNoop.perSecond.toFixed(0)} jobs/s = ${pct(ratio)}   goal >= 50 %   ${ratio >= 0.5 ? 'met' : 'NOT MET'}`,
    `  ours vs a bare BullMQ worker that only POSTs: ${rawPost.perSecond.toFixed(0)} faxes/s = ${pct(pipeline.perSecond / rawPost.perSecond)}`,
    `  worker CPU per job: ours ${pipeline.cpuMsPerJob.toFixed(2)} ms, POST-only ${rawPost.cpuMsPerJob.toFixed(2)} ms, no-op ${rawNoop.cpuMsPerJob.toFixed(2)} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
