import { type BenchMeta, num, type Report } from './report.ts';

/** A Markdown table; `|` in a cell is escaped so every row keeps the header's columns. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/** The goals and the figures with their baselines: what the README shows. */
export function summaryMarkdown(report: Report): string {
  const goals = markdownTable(
    ['goal', 'measured', 'met'],
    report.goals.map((g) => [g.goal, g.measured, g.met ? 'met' : '**not met**']),
  );
  const figures = markdownTable(
    ['measure', 'ours', 'baseline (same run, same Redis)', 'ours ÷ baseline'],
    report.rows.map((row) => [row.measure, row.ours, row.baseline, row.ratio]),
  );
  return `${goals}\n\n${figures}`;
}

/** The whole report as Markdown (bench/reports/latest.md, and bench/REPORT.md when published). */
export function renderMarkdown(report: Report): string {
  const { meta } = report;
  const busy = isBusy(meta);
  const knobs = Object.entries(meta.knobs)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
  const parts = [
    '# Benchmark report',
    `Measured ${meta.measuredAt} in ${num(meta.durationSeconds)} s on ${meta.machine.cpus} × ${meta.machine.cpuModel}, ${num(meta.machine.memoryGb)} GB, Node ${meta.machine.node}, Redis ${meta.machine.redis}. CPU in use by other work right before the run: ${(meta.cpuInUseBefore * 100).toFixed(0)} %${busy ? ' — **a busy machine**: absolute figures may be low and noisy; the ratios, each baseline measured right beside its counterpart, are what to compare' : ''}. Load average ${meta.loadAverage.start.toFixed(2)} at the start, ${meta.loadAverage.end.toFixed(2)} at the end (the run's own load included).`,
    `Knobs: ${knobs}.`,
    '## Goals and figures',
    summaryMarkdown(report),
    '## What each item cost',
    'CPU of the process doing the work (the producer, webhook service or worker; the bench process for library calls), CPU of redis-server, and Redis commands per item (those inside scripts included) from `INFO commandstats`.',
    markdownTable(
      ['item', 'ours', 'baseline', 'ours ÷ baseline (CPU)'],
      report.costs.map((row) => [row.measure, row.ours, row.baseline, row.ratio]),
    ),
  ];
  if (report.bounds.length > 0) {
    parts.push('## What bounds the goals not met', report.bounds.map((text) => `- ${text}`).join('\n'));
  }
  return `${parts.join('\n\n')}\n`;
}

export const README_START = '<!-- bench:start -->';
export const README_END = '<!-- bench:end -->';

/** README.md's text with the section between its bench markers replaced by this report's summary. */
export function withReadmeTable(readme: string, report: Report): string {
  const from = readme.indexOf(README_START);
  const to = readme.indexOf(README_END);
  if (from < 0 || to < from) {
    throw new Error(`README.md has no ${README_START} … ${README_END} section to publish the report to`);
  }
  const section = [
    README_START,
    `Latest run (${report.meta.measuredAt.slice(0, 10)}, ${report.meta.machine.cpus} × ${report.meta.machine.cpuModel}${isBusy(report.meta) ? ', **a busy machine**: compare the ratios' : ''}; the whole report, with what each item cost: [bench/REPORT.md](bench/REPORT.md)):`,
    '',
    summaryMarkdown(report),
    '',
    ...(report.bounds.length > 0
      ? ['What bounds the goals not met:', '', ...report.bounds.map((text) => `- ${text}`), '']
      : []),
  ].join('\n');
  return readme.slice(0, from) + section + readme.slice(to);
}

/** Other work shared the machine: a 1-minute load average above half its cores at either end. */
/** Busy: something else used over a quarter of the machine's CPU right before the run. */
export const isBusy = (meta: BenchMeta) => meta.cpuInUseBefore > BUSY_CPU_SHARE;
const BUSY_CPU_SHARE = 0.25;
