import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ServiceStack, repoRoot } from '#scripts/lib/stack.js';
import { benchProfile, resolutionsOf } from './cases.js';
import { FrameLibrary } from './frames.js';
import { liveFailures, runLiveBench, type LiveReport } from './live.js';
import { finish, machineInfo } from './machine.js';
import {
  BENCH_OUT,
  renderLiveMarkdown,
  renderLiveText,
  renderText,
  summaryMarkdown,
  writeLiveReport,
  writeReport,
} from './report.js';
import { runSuite } from './suite.js';
import { renderXpraMarkdown, renderXpraText, runXpraBench, type XpraBenchReport } from './xpra.js';

const USAGE = `Usage: npm run bench [-- --quick] [-- --only TEXT | --live-only | --xpra-only]

Measures raw in-process encoding (libs/codecs, as many encodes in flight as the node has job slots) and
the same frames through the whole service (HTTP -> API -> Redis -> worker -> SSE -> outputs), on a stack
of its own (redis-server on a free port, the API, one worker with concurrency = cores), stopped at the end.
Then live mode: latency per frame of a live stream over the encode alone (its session straight to the
node, the session through the API's relay, and POST -> output on its WebSocket), at 720p and 1080p,
H.264 and VP8, one stream's frame rate against ffmpeg fed directly, and kill -9 -> frames flowing again
over 10 trials on a 2-node stack; each figure beside the issue's goal (bench/live.ts).

  --quick       a shorter run of the same (jpeg and h264 at 1080p and 720p, small counts; under a minute;
                live mode: 720p H.264 only and 3 failover trials)
  --only TEXT   only the cases whose name contains TEXT (e.g. --only "jpeg 1080p"), no live mode
  --live-only   only live mode (writes bench/out/live.json and live.md, live-quick.* with --quick)
  --xpra-only   only Xpra's per-frame round trip at 720p and 1080p H.264: Xpra's remote encoder module
                (../shared/xpra/remote-client.py) through the listener (XPRA_BIND), against the kit's
                reference server (transport alone) and the node's raw encode (bench/xpra.ts; writes
                bench/out/xpra.json); the full run ends with it too when the kit is there
  --help        this text

Writes bench/out/latest.json and latest.md (and full.* or quick.*, kept per profile); bench/out/ is
ignored by git. The figures the README quotes come from the run committed in bench/reference/.`;

const WORKER_NAME = 'bench-node';

interface Options {
  quick: boolean;
  only: string | null;
  liveOnly: boolean;
  xpraOnly: boolean;
}

function parseOptions(argv: string[]): Options | null {
  let values: {
    help?: boolean;
    quick?: boolean;
    only?: string;
    'live-only'?: boolean;
    'xpra-only'?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        quick: { type: 'boolean' },
        only: { type: 'string' },
        'live-only': { type: 'boolean' },
        'xpra-only': { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new Error(`${(error as Error).message.split('\n')[0]}\n\n${USAGE}`);
  }
  if (values.help) return null;
  const options = {
    quick: values.quick === true,
    only: values.only ?? null,
    liveOnly: values['live-only'] === true,
    xpraOnly: values['xpra-only'] === true,
  };
  if (options.xpraOnly && (options.liveOnly || options.only !== null))
    throw new Error(`--xpra-only excludes --only and --live-only`);
  if (options.liveOnly && options.only !== null) throw new Error(`--only and --live-only exclude each other`);
  return options;
}

/** Live mode; a failure that stops the whole section is printed and counted, never thrown. */
async function liveSection(
  stack: ServiceStack,
  concurrency: number,
  quick: boolean,
  dataDir: string,
): Promise<{ live: LiveReport | null; failures: number }> {
  // The failover trials kill nodes: a stack of their own, two nodes (a new one replaces each killed one).
  const failoverStack = () =>
    ServiceStack.start({
      dataDir: join(dataDir, 'failover-redis'),
      workers: [1, 2].map((index) => ({
        name: `bench-failover-${index}`,
        concurrency: 1,
        timeoutSeconds: 2,
      })),
    });
  try {
    const live = await runLiveBench({ stack, workerName: WORKER_NAME, concurrency, quick, failoverStack });
    return { live, failures: liveFailures(live) };
  } catch (error) {
    console.error(`bench: live mode FAILED: ${(error as Error).message}`);
    return { live: null, failures: 1 };
  }
}

/** Xpra's round trip (bench/xpra.ts): printed, and written to bench/out/xpra.json; null when it failed or was skipped. */
async function xpraSection(
  quick: boolean,
  dataDir: string,
  results: string,
): Promise<XpraBenchReport | null> {
  try {
    const xpra = await runXpraBench({ quick, dataDir });
    if (!xpra) return null;
    console.log(renderXpraText(xpra));
    console.log(`\nMarkdown:\n\n${renderXpraMarkdown(xpra)}\n`);
    mkdirSync(results, { recursive: true });
    writeFileSync(
      join(results, 'xpra.json'),
      `${JSON.stringify({ machine: machineInfo(), xpra }, null, 2)}\n`,
    );
    return xpra;
  } catch (error) {
    console.error(`bench: Xpra section FAILED: ${(error as Error).message}`);
    return null;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    console.log(USAGE);
    return;
  }
  const profile = benchProfile(options.quick);
  if (options.only !== null) {
    const only = options.only;
    profile.cases = profile.cases.filter((benchCase) => benchCase.name.includes(only));
    if (profile.cases.length === 0) throw new Error(`no case name contains "${only}"`);
  }

  const dataDir = mkdtempSync(join(tmpdir(), 'encoder-bench-'));
  let stack: ServiceStack | null = null;
  let stopping: Promise<void> | null = null;
  // Stops only what this bench started: its own stack's processes, then its data folder.
  const stop = () =>
    (stopping ??= (async () => {
      await stack?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping the stack`);
      void stop().finally(() => process.exit(130));
    });
  }

  try {
    const startedAt = new Date();
    const concurrency = availableParallelism();
    const results = join(repoRoot(), BENCH_OUT);
    if (options.xpraOnly) {
      const xpra = await xpraSection(options.quick, dataDir, results);
      if (!xpra) process.exitCode = 1;
      return;
    }
    if (options.liveOnly) {
      const machine = machineInfo();
      console.log(`bench: starting redis-server, the API and one worker (concurrency ${concurrency})`);
      stack = await ServiceStack.start({ dataDir, workers: [{ name: WORKER_NAME, concurrency }] });
      const { live, failures } = await liveSection(stack, concurrency, options.quick, dataDir);
      await stop();
      if (live) {
        console.log(renderLiveText(live));
        console.log(`\nMarkdown:\n\n${renderLiveMarkdown(live)}`);
        const name = options.quick ? 'live-quick' : 'live';
        writeLiveReport(
          {
            profile: live.profile,
            started_at: startedAt.toISOString(),
            duration_s: (Date.now() - startedAt.getTime()) / 1000,
            machine: finish(machine),
            live,
          },
          join(results, `${name}.json`),
          join(results, `${name}.md`),
        );
        console.log(`wrote ${join(BENCH_OUT, `${name}.json`)} and ${name}.md`);
      }
      if (failures > 0) process.exitCode = 1;
      return;
    }
    const library = new FrameLibrary(profile.distinctFrames);
    console.log(`bench (${profile.name}): ${profile.distinctFrames} desktop-like frames per resolution`);
    for (const resolution of resolutionsOf(profile)) library.frames(resolution);
    console.log(`bench: starting redis-server, the API and one worker (concurrency ${concurrency})`);
    stack = await ServiceStack.start({ dataDir, workers: [{ name: WORKER_NAME, concurrency }] });
    const { report, failures } = await runSuite({
      profile,
      library,
      stack,
      workerName: WORKER_NAME,
      concurrency,
      scratchDir: join(dataDir, 'scratch-redis'),
      startedAt,
    });
    let liveFailed = 0;
    if (options.only === null) {
      const { live, failures: count } = await liveSection(stack, concurrency, options.quick, dataDir);
      if (live) report.live = live;
      liveFailed = count;
    }
    await stop();
    if (options.only === null) await xpraSection(options.quick, dataDir, results);
    report.duration_s = (Date.now() - Date.parse(report.started_at)) / 1000;
    console.log(renderText(report));
    console.log(`\nMarkdown (README):\n\n${summaryMarkdown(report)}\n`);
    if (report.live) console.log(`${renderLiveMarkdown(report.live)}`);
    for (const name of ['latest', profile.name]) {
      writeReport(report, join(results, `${name}.json`), join(results, `${name}.md`));
    }
    console.log(
      `wrote ${join(BENCH_OUT, 'latest.json')} and latest.md (and ${profile.name}.json, ${profile.name}.md)`,
    );
    if (failures + liveFailed > 0) process.exitCode = 1;
  } finally {
    await stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
