import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CopyCount, FrameCopy } from './copies.js';
import type { CpuTimes } from './cpu.js';
import type { IsolatedStage } from './isolated.js';
import type { LiveReport } from './live.js';
import { SERVICE_STAGES, type StageBreakdown } from './stages.js';
import { round } from './stats.js';

/**
 * Where runs write their reports, under the repository root: a folder git ignores, so a run changes no
 * tracked file. The figures the README quotes come from the run committed in bench/reference/.
 */
export const BENCH_OUT = join('bench', 'out');

export interface MachineInfo {
  cpus: number;
  model: string;
  memory_gib: number;
  node: string;
  os: string;
  load_avg_start: number[];
  load_avg_end: number[];
  sharp: string;
  ffmpeg: string;
  redis: string;
}

export interface CaseResult {
  name: string;
  codec: string;
  resolution: string;
  encoding: string;
  frames_per_job: number;
  jobs: number;
  raw_fps: number | null;
  service_fps: number | null;
  ratio: number | null;
  /** Raw CPU per frame / the service's CPU per frame (all its processes): less sensitive to other load. */
  cpu_ratio?: number;
  /** Why the case did not run (e.g. the API does not take this upload encoding yet). */
  skipped?: string;
  implementation?: string;
  raw_seconds?: number;
  service_seconds?: number;
  /** CPU milliseconds per frame: raw (this process and its ffmpeg children) and per service process. */
  raw_cpu_ms_per_frame?: number;
  service_cpu_ms_per_frame?: CpuTimes & { total: number };
  output_kib_per_frame?: { raw: number; service: number };
  job_latency_ms?: { p50: number; p95: number };
  /** Event streams that ended before the job's final event (the bench resumed them with Last-Event-ID). */
  sse_resumes?: number;
  /** Service: first request -> first job's outputs at the client (the pipeline filling up). */
  first_output_s?: number;
  /** Bytes through Redis's sockets per frame (frames, outputs, queue and job bookkeeping). */
  redis_mib_per_frame?: { in: number; out: number };
  /** Append-only-file rewrites Redis ran during the service measurement. */
  aof_rewrites?: number;
  /** Copies of the bytes that carry a frame (bench/copies.ts), and that in whole frames. */
  copies_per_frame?: { copies: number; frame_equivalents: number };
  /** 1-minute load average when the case ended: other work on the machine shows here. */
  load_1m?: number;
}

export interface BenchReport {
  profile: string;
  started_at: string;
  duration_s: number;
  machine: MachineInfo;
  setup: {
    concurrency: number;
    clients_in_flight: number;
    format: string;
    settings: Record<string, number | string>;
    note: string;
  };
  cases: CaseResult[];
  stages: {
    method: string[];
    definitions: Record<string, string>;
    service_ms_per_frame: ({ case: string } & StageBreakdown)[];
    isolated: IsolatedStage[];
  };
  copies: { count: CopyCount; path: FrameCopy[]; compressed_uploads: string };
  /** Live mode (one long-running encoder per stream): latency per frame and one stream's frame rate. */
  live?: LiveReport;
}

/** `npm run bench -- --live-only`: the live section alone. */
export interface LiveOnlyReport {
  profile: string;
  started_at: string;
  duration_s: number;
  machine: MachineInfo;
  live: LiveReport;
}

type Cell = string | number | null | undefined;

function cell(value: Cell): string {
  if (value === null || value === undefined || (typeof value === 'number' && Number.isNaN(value))) return '-';
  return typeof value === 'number' ? String(round(value)) : value;
}

/** A fixed-width text table; columns after the first are right-aligned. */
export function textTable(headers: string[], rows: Cell[][]): string {
  // A failed case's row is shorter (its name and why): its missing cells are blank.
  const cells = [
    headers,
    ...rows.map((row) => headers.map((_, column) => (column < row.length ? cell(row[column]) : ''))),
  ];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column].length)));
  const line = (row: string[]) =>
    row
      .map((text, column) => (column === 0 ? text.padEnd(widths[column]) : text.padStart(widths[column])))
      .join('  ');
  return [
    line(cells[0]),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...cells.slice(1).map(line),
  ].join('\n');
}

export function markdownTable(headers: string[], rows: Cell[][]): string {
  const line = (row: string[]) => `| ${row.join(' | ')} |`;
  return [
    line(headers),
    line(headers.map((_, column) => (column === 0 ? '---' : '---:'))),
    ...rows.map((row) => line(row.map(cell))),
  ].join('\n');
}

const SUMMARY_HEADERS = ['case', 'frames', 'raw fps', 'service fps', 'ratio', 'CPU ratio'];

function summaryRows(report: BenchReport): Cell[][] {
  return report.cases.map((result) => [
    result.name,
    result.skipped ? null : result.jobs * result.frames_per_job,
    result.raw_fps,
    result.service_fps,
    result.skipped ? `skipped: ${result.skipped}` : result.ratio,
    result.cpu_ratio,
  ]);
}

function stageTable(report: BenchReport, render: typeof textTable): string {
  return render(
    ['ms per frame', ...SERVICE_STAGES.map((stage) => stage.label)],
    report.stages.service_ms_per_frame.map((row) => [
      row.case,
      ...SERVICE_STAGES.map((stage) => row[stage.key]),
    ]),
  );
}

function cpuTable(report: BenchReport, render: typeof textTable): string {
  return render(
    [
      'CPU ms per frame',
      'raw',
      'svc total',
      'client',
      'api',
      'redis',
      'worker+ffmpeg',
      'Redis MiB in/out',
      'AOF rewrites',
      'copies (frames)',
    ],
    report.cases
      .filter((result) => !result.skipped)
      .map((result) => {
        const service = result.service_cpu_ms_per_frame;
        const redis = result.redis_mib_per_frame;
        return [
          result.name,
          result.raw_cpu_ms_per_frame,
          service?.total,
          service?.bench,
          service?.api,
          service?.redis,
          service?.worker,
          redis ? `${round(redis.in)} / ${round(redis.out)}` : null,
          result.aof_rewrites,
          result.copies_per_frame
            ? `${result.copies_per_frame.copies} (${round(result.copies_per_frame.frame_equivalents)})`
            : null,
        ];
      }),
  );
}

function isolatedTable(report: BenchReport, render: typeof textTable): string {
  return render(
    ['stage alone', 'res', 'ms', 'MB/s'],
    report.stages.isolated.map((stage) => [stage.stage, stage.resolution, stage.ms, stage.mbPerSecond]),
  );
}

/** How each isolated stage was measured, once per stage. */
function isolatedLegend(report: BenchReport): string[] {
  const how = new Map(report.stages.isolated.map((stage) => [stage.stage, stage.how]));
  return [...how].map(([stage, text]) => `${stage}: ${text}`);
}

function copiesText(report: BenchReport): string {
  const { count, path, compressed_uploads: compressed } = report.copies;
  return [
    ...path.map((copy) => `  ${String(copy.copies).padStart(2)}x  [${copy.place}] ${copy.step}`),
    `  = ${count.total} copies of every frame byte (${count.node} in Node, ${count.redis} in Redis, ${count.kernel} ` +
      `in the kernel); ${count.totalWithoutAof} without the append-only file; raw in-process path: ${count.rawPath}`,
    `  ${compressed}`,
  ].join('\n');
}

function machineLine(report: BenchReport): string {
  const { machine, setup } = report;
  return (
    `${machine.cpus} x ${machine.model}, ${machine.memory_gib} GiB, Node ${machine.node}, ${machine.os}; ` +
    `${setup.concurrency} job slots (worker concurrency = cores), ${setup.clients_in_flight} clients in flight; ` +
    `load ${machine.load_avg_start[0]} -> ${machine.load_avg_end[0]}`
  );
}

/** Problems the service showed while it was measured, for the reader to know about. */
function serviceWarnings(report: BenchReport): string[] {
  return report.cases
    .filter((result) => (result.sse_resumes ?? 0) > 0)
    .map(
      (result) =>
        `${result.name}: ${result.sse_resumes} event stream(s) ended before the job's final event ` +
        '(the service closed them before sending `completed`; the bench resumed them with Last-Event-ID)',
    );
}

const LIVE_LATENCY_HEADERS = [
  'live ms per frame',
  'frames',
  'raw p50',
  'raw p99',
  'ws floor p50',
  'direct p50',
  'direct p99',
  'relay p50',
  'relay p99',
  'POST p50',
  'POST p99',
  '202 p50',
];

function liveLatencyTable(live: LiveReport, render: typeof textTable): string {
  return render(
    LIVE_LATENCY_HEADERS,
    live.latency.map((result) =>
      result.failed
        ? [result.name, `failed: ${result.failed}`]
        : [
            result.name,
            result.frames,
            result.raw_ms?.p50,
            result.raw_ms?.p99,
            result.transport_ms?.p50,
            result.direct_ms?.p50,
            result.direct_ms?.p99,
            result.relay_ms?.p50,
            result.relay_ms?.p99,
            result.service_ms?.p50,
            result.service_ms?.p99,
            result.accepted_ms?.p50,
          ],
    ),
  );
}

const GOAL_HEADERS = ['goal (issue 13)', 'target', 'measured', 'met'];

/** Each measured figure beside the goal for it, and whether it is met. */
export function liveGoals(live: LiveReport): (string | number)[][] {
  const rows: (string | number)[][] = [];
  const fmt = (value: number | undefined) => (value === undefined ? '-' : `+${round(value)} ms`);
  const met = (value: number | undefined, limit: number) =>
    value === undefined || !Number.isFinite(value) ? 'not measured' : value <= limit ? 'yes' : 'NO';
  for (const result of live.latency) {
    const p50Goal = result.resolution === '1080p' ? 8 : 3;
    rows.push(
      [
        `${result.name} direct, added p50`,
        `+${p50Goal} ms`,
        fmt(result.direct_added_ms?.p50),
        met(result.direct_added_ms?.p50, p50Goal),
      ],
      [
        `${result.name} direct, added p99`,
        '+15 ms',
        fmt(result.direct_added_ms?.p99),
        met(result.direct_added_ms?.p99, 15),
      ],
      [
        `${result.name} relay, added p50`,
        '+6 ms',
        fmt(result.relay_added_ms?.p50),
        met(result.relay_added_ms?.p50, 6),
      ],
      [
        `${result.name} relay, added p99`,
        '+15 ms',
        fmt(result.relay_added_ms?.p99),
        met(result.relay_added_ms?.p99, 15),
      ],
    );
  }
  for (const result of live.throughput) {
    const ratio = result.session_ratio;
    rows.push([
      `${result.name} one stream (session, window ${result.window ?? '-'})`,
      '>= 0.8x ffmpeg direct',
      ratio === undefined
        ? '-'
        : `${ratio.toFixed(2)}x (${round(result.session_fps ?? NaN)} / ${round(result.ffmpeg_fps ?? NaN)} fps)`,
      ratio === undefined ? 'not measured' : ratio >= 0.8 ? 'yes' : 'NO',
    ]);
  }
  const failover = live.failover;
  if (failover) {
    rows.push([
      'kill -9 -> frames flowing',
      `< 1 s in ${failover.trials} of ${failover.trials}`,
      `${failover.under_1s} of ${failover.trials} under 1 s` +
        (failover.ms.length
          ? ` (p50 ${round(failover.p50 ?? NaN)} ms, max ${round(failover.max ?? NaN)} ms)`
          : ''),
      failover.under_1s === failover.trials ? 'yes' : 'NO',
    ]);
  }
  return rows;
}

function liveGoalsTable(live: LiveReport, render: typeof textTable): string {
  return render(GOAL_HEADERS, liveGoals(live));
}

function failoverLines(live: LiveReport): string[] {
  const failover = live.failover;
  if (!failover) return [];
  return [
    `Failover: ${failover.setup}. Trials (ms): ${failover.ms.map((ms) => round(ms)).join(', ') || '-'}` +
      (failover.failures.length ? `; failed: ${failover.failures.join('; ')}` : '') +
      '.',
  ];
}

/** Median ms of each part of a live frame's way, beside the encode alone. */
function liveStagesTable(live: LiveReport, render: typeof textTable): string {
  return render(
    ['live p50 ms', 'upload+store', 'queue', 'node+deliver', 'raw encode', 'service'],
    live.latency
      .filter((result) => result.stages_p50_ms)
      .map((result) => [
        result.name,
        result.stages_p50_ms?.upload_store,
        result.stages_p50_ms?.queue,
        result.stages_p50_ms?.node_to_client,
        result.raw_ms?.p50,
        result.service_ms?.p50,
      ]),
  );
}

const LIVE_STAGES_NOTE =
  "Parts, from each batch's job record (Date.now() on this one host): upload+store = POST start -> frame " +
  'stored in Redis and job created; queue = -> the node starts the batch (enqueue, pickup, stream ' +
  'position check); node+deliver = -> output message at the client (frame read from Redis, encode, ' +
  "output stored, event logged, the API's follower sends it on the WebSocket). Medians do not add up exactly.";

function liveThroughputTable(live: LiveReport, render: typeof textTable): string {
  return render(
    [
      'live, one stream',
      'frames',
      'ffmpeg direct fps',
      'session fps',
      'ratio',
      'window',
      'POST fps',
      'ratio',
      'in flight',
    ],
    live.throughput.map((result) =>
      result.failed
        ? [result.name, `failed: ${result.failed}`]
        : [
            result.name,
            result.frames,
            result.ffmpeg_fps,
            result.session_fps,
            result.session_ratio,
            result.window,
            result.service_fps,
            result.ratio,
            result.in_flight,
          ],
    ),
  );
}

function liveSetup(live: LiveReport): string {
  const settings = live.latency.find((result) => result.settings)?.settings;
  const implementations = [
    ...new Set(live.latency.flatMap((result) => (result.implementation ? [result.implementation] : []))),
  ];
  const knobs = settings
    ? `quality ${settings.quality}, speed ${settings.speed}, ${settings.fps} fps, a keyframe every ` +
      `${settings.keyframeInterval} frames, ${settings.threads} ffmpeg thread(s)`
    : 'no stream created';
  return (
    `${implementations.join(', ') || '-'}; ${knobs} (the API's defaults; the node's sizing at concurrency ` +
    `${live.node_concurrency}); load ${live.load_avg_start[0]} -> ${live.load_avg_end[0]}`
  );
}

function liveProblems(live: LiveReport): string[] {
  return live.latency.flatMap((result) => (result.problem ? [`${result.name}: ${result.problem}`] : []));
}

/** The live section as text, for the terminal. */
export function renderLiveText(live: LiveReport): string {
  return [
    `\n-- live mode (${live.profile}, ${round(live.duration_s)} s): ${liveSetup(live)}`,
    liveLatencyTable(live, textTable),
    '',
    liveStagesTable(live, textTable),
    '',
    liveThroughputTable(live, textTable),
    '',
    liveGoalsTable(live, textTable),
    ...failoverLines(live).map((line) => `  ${line}`),
    ...liveProblems(live).map((line) => `  warning: ${line}`),
    ...live.method.map((line) => `  ${line}`),
    `  ${LIVE_STAGES_NOTE}`,
  ].join('\n');
}

/** The live section in Markdown; `level` is the heading's. */
export function renderLiveMarkdown(live: LiveReport, level = '####'): string {
  return [
    `${level} Live mode: latency per frame and one stream's frame rate`,
    '',
    `${liveSetup(live)}.`,
    '',
    liveLatencyTable(live, markdownTable),
    '',
    liveStagesTable(live, markdownTable),
    '',
    liveThroughputTable(live, markdownTable),
    '',
    liveGoalsTable(live, markdownTable),
    '',
    ...failoverLines(live).map((line) => `- ${line}`),
    ...liveProblems(live).map((line) => `- warning: ${line}`),
    ...live.method.map((line) => `- ${line}`),
    `- ${LIVE_STAGES_NOTE}`,
    '',
  ].join('\n');
}

/** The whole report as text, for the terminal. */
export function renderText(report: BenchReport): string {
  return [
    `\n== bench (${report.profile}, ${round(report.duration_s)} s): ${machineLine(report)}`,
    `\n-- where a frame's time goes on the service path (mean ms per frame; stages overlap)`,
    stageTable(report, textTable),
    ...report.stages.method.map((line) => `  ${line}`),
    `\n-- CPU per frame by process (the client is this bench; on a 2-core box every process competes)`,
    cpuTable(report, textTable),
    `\n-- each stage alone (one frame at a time, median)`,
    isolatedTable(report, textTable),
    ...isolatedLegend(report).map((line) => `  ${line}`),
    `\n-- copies of a frame on the service path`,
    copiesText(report),
    `\n-- summary`,
    textTable(SUMMARY_HEADERS, summaryRows(report)),
    ...serviceWarnings(report).map((line) => `  warning: ${line}`),
    ...(report.live ? [renderLiveText(report.live)] : []),
  ].join('\n');
}

/** The README version: the summary table, then the details. */
export function renderMarkdown(report: BenchReport): string {
  const warnings = serviceWarnings(report).map((line) => `- warning: ${line}`);
  return [
    `### Benchmark (${report.profile}): raw encoding vs the whole service`,
    '',
    machineLine(report) + '.',
    '',
    markdownTable(SUMMARY_HEADERS, summaryRows(report)),
    '',
    ...(warnings.length > 0 ? [...warnings, ''] : []),
    '`ratio` = service fps / raw fps (same frames, same encoders, same number of encodes in flight). ' +
      '`CPU ratio` = raw CPU ms per frame / service CPU ms per frame (client, API, Redis, worker and ffmpeg ' +
      'together): the same comparison by CPU spent, which other load on the machine disturbs less.',
    '',
    "#### Where a frame's time goes (mean ms per frame, service path; stages overlap)",
    '',
    stageTable(report, markdownTable),
    '',
    ...report.stages.method.map((line) => `- ${line}`),
    '',
    '#### CPU per frame by process',
    '',
    cpuTable(report, markdownTable),
    '',
    '#### Each stage alone',
    '',
    isolatedTable(report, markdownTable),
    '',
    ...isolatedLegend(report).map((line) => `- ${line}`),
    '',
    '#### Copies of a frame on the service path',
    '',
    '```',
    copiesText(report),
    '```',
    '',
    ...(report.live ? [renderLiveMarkdown(report.live)] : []),
  ].join('\n');
}

/** The summary table alone, in Markdown, to paste into the README. */
export function summaryMarkdown(report: BenchReport): string {
  return markdownTable(SUMMARY_HEADERS, summaryRows(report));
}

function writeJson(report: object, jsonPath: string): void {
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(
    jsonPath,
    `${JSON.stringify(report, (_key, value: unknown) => (typeof value === 'number' ? round(value) : value), 2)}\n`,
  );
}

export function writeReport(report: BenchReport, jsonPath: string, markdownPath: string): void {
  writeJson(report, jsonPath);
  writeFileSync(markdownPath, renderMarkdown(report));
}

export function writeLiveReport(report: LiveOnlyReport, jsonPath: string, markdownPath: string): void {
  writeJson(report, jsonPath);
  const { machine } = report;
  writeFileSync(
    markdownPath,
    [
      `### Benchmark (${report.profile}): live mode`,
      '',
      `${machine.cpus} x ${machine.model}, ${machine.memory_gib} GiB, Node ${machine.node}, ${machine.os}; ` +
        `${machine.ffmpeg.split(' Copyright')[0]}.`,
      '',
      renderLiveMarkdown(report.live, '####'),
    ].join('\n'),
  );
}
