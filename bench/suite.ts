import { frameByteLength } from '#contracts';
import type { ServiceStack } from '#scripts/lib/stack.js';
import {
  FRAME_FORMAT,
  SETTINGS,
  resolutionsOf,
  type BenchCase,
  type BenchProfile,
  type UploadEncoding,
} from './cases.js';
import { COMPRESSED_UPLOAD_NOTE, SERVICE_PATH_COPIES, copiesPerFrame, countCopies } from './copies.js';
import { CpuMeter, PROCESS_ROLES, type CpuTimes } from './cpu.js';
import type { FrameLibrary } from './frames.js';
import { measureIsolatedStages } from './isolated.js';
import { currentLoad, finish, machineInfo } from './machine.js';
import { RawEncoding, type RawRun } from './raw.js';
import { RedisCounterReader, type RedisCounters } from './redis-counters.js';
import type { BenchReport, CaseResult } from './report.js';
import { ServiceDriver, type JobSample, type ServiceRun } from './service.js';
import { SERVICE_STAGES, STAGE_METHOD, jobLatency, stageBreakdown } from './stages.js';

export interface SuiteOptions {
  profile: BenchProfile;
  library: FrameLibrary;
  /** The running stack: redis-server, the API and one worker named `workerName`. */
  stack: ServiceStack;
  workerName: string;
  /** Job slots of that worker; the raw runs keep as many encodes in flight. */
  concurrency: number;
  /** Where the isolated measurements may start a scratch redis-server. */
  scratchDir: string;
  startedAt: Date;
}

const perFrame = (cpu: CpuTimes, frames: number) => {
  const result = { ...cpu, total: 0 };
  for (const role of PROCESS_ROLES) {
    result[role] = cpu[role] / frames;
    result.total += result[role];
  }
  return result;
};

function caseResult(
  benchCase: BenchCase,
  raw: { result: RawRun; cpu: CpuTimes },
  service: {
    result: ServiceRun;
    cpu: CpuTimes;
    redis: RedisCounters;
    compressedFraction: number;
    /** What the stack stores of a frame: the LZ4 block's share (the API compresses raw frames). */
    storedFraction: number;
  },
  samples: JobSample[],
): CaseResult {
  const mibPerFrame = (bytes: number) => bytes / 1024 ** 2 / service.result.frames;
  const rawCpu = raw.cpu.bench / raw.result.frames;
  const serviceCpu = perFrame(service.cpu, service.result.frames);
  return {
    ...caseHeader(benchCase),
    raw_fps: raw.result.fps,
    service_fps: service.result.fps,
    ratio: service.result.fps / raw.result.fps,
    implementation: raw.result.implementation,
    raw_seconds: raw.result.seconds,
    service_seconds: service.result.seconds,
    raw_cpu_ms_per_frame: rawCpu,
    service_cpu_ms_per_frame: serviceCpu,
    cpu_ratio: rawCpu / serviceCpu.total,
    output_kib_per_frame: {
      raw: raw.result.outputBytes / 1024 / raw.result.frames,
      service: service.result.outputBytes / 1024 / service.result.frames,
    },
    job_latency_ms: jobLatency(samples),
    sse_resumes: samples.reduce((sum, sample) => sum + sample.sseResumes, 0),
    first_output_s: service.result.firstOutputSeconds,
    redis_mib_per_frame: {
      in: mibPerFrame(service.redis.netInputBytes),
      out: mibPerFrame(service.redis.netOutputBytes),
    },
    aof_rewrites: service.redis.aofRewrites,
    copies_per_frame: copiesPerFrame(benchCase.encoding, service.compressedFraction, service.storedFraction),
    load_1m: currentLoad(),
  };
}

/** The bytes a case's first job sends, over its raw frames' size. */
function compressedFraction(library: FrameLibrary, benchCase: BenchCase): number {
  const sent = library.jobBody(benchCase, 0).reduce((sum, part) => sum + part.length, 0);
  const { width, height } = benchCase.resolution;
  return sent / (frameByteLength(width, height, FRAME_FORMAT) * benchCase.framesPerJob);
}

/** Runs one phase of a case; a failure names the phase. */
async function phase<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}`, { cause: error });
  }
}

function caseHeader(benchCase: BenchCase) {
  return {
    name: benchCase.name,
    codec: benchCase.codec,
    resolution: benchCase.resolution.label,
    encoding: benchCase.encoding,
    frames_per_job: benchCase.framesPerJob,
    jobs: benchCase.jobs,
  };
}

function skipped(benchCase: BenchCase, reason: string): CaseResult {
  return { ...caseHeader(benchCase), raw_fps: null, service_fps: null, ratio: null, skipped: reason };
}

/** The tools one case is measured with. */
interface CaseTools {
  library: FrameLibrary;
  raw: RawEncoding;
  service: ServiceDriver;
  cpu: CpuMeter;
  redisCounters: RedisCounterReader;
  inFlight: number;
}

/** Raw first, then the same frames through the service, back to back so that both see the same machine. */
async function measureCase(tools: CaseTools, benchCase: BenchCase) {
  const { library, raw, service, cpu, redisCounters, inFlight } = tools;
  library.prepare(benchCase);
  await phase('raw warm-up', () => raw.warmUp(benchCase, library));
  const rawRun = await phase('raw', () => cpu.measure(() => raw.run(benchCase, library)));
  await phase('service warm-up', () => service.warmUp(benchCase, library, inFlight));
  const serviceRun = await phase('service', () =>
    cpu.measure(() => redisCounters.measure(() => service.run(benchCase, library, inFlight))),
  );
  const { result: run, counters } = serviceRun.result;
  const samples = await service.samples(run.jobs);
  return {
    result: caseResult(
      benchCase,
      rawRun,
      {
        result: run,
        cpu: serviceRun.cpu,
        redis: counters,
        compressedFraction: compressedFraction(library, benchCase),
        storedFraction: compressedFraction(library, { ...benchCase, encoding: 'lz4' }),
      },
      samples,
    ),
    stages: { case: benchCase.name, ...stageBreakdown(samples) },
  };
}

/**
 * Runs every case of a profile against a running stack, after the isolated stage measurements, and
 * assembles the report. A case that fails is reported as such and the others still run.
 */
export async function runSuite(options: SuiteOptions): Promise<{ report: BenchReport; failures: number }> {
  const { profile, library, stack, concurrency, startedAt } = options;
  const inFlight = concurrency * 2;
  const elapsed = () => `${Math.round((Date.now() - startedAt.getTime()) / 1000)} s`;
  const machine = machineInfo();
  const service = new ServiceDriver(stack.apiUrl);
  const redisCounters = await RedisCounterReader.connect(stack.redisUrl);
  const tools: CaseTools = {
    library,
    raw: new RawEncoding(concurrency),
    service,
    cpu: new CpuMeter(),
    redisCounters,
    inFlight,
  };
  const cases: CaseResult[] = [];
  const stageRows: BenchReport['stages']['service_ms_per_frame'] = [];
  let failures = 0;
  try {
    console.log(`bench: stack up at ${elapsed()}; each stage alone`);
    const isolated = await measureIsolatedStages({
      redisUrl: stack.redisUrl,
      library,
      resolutions: resolutionsOf(profile),
      repeats: profile.stageRepeats,
      scratchDir: options.scratchDir,
    });

    const unsupported = new Map<UploadEncoding, string | null>();
    for (const benchCase of profile.cases) {
      if (!unsupported.has(benchCase.encoding))
        unsupported.set(benchCase.encoding, await service.unsupported(benchCase.encoding));
      const reason = unsupported.get(benchCase.encoding);
      if (reason) {
        console.log(
          `  ${benchCase.name}: skipped (the API refuses ${benchCase.encoding} uploads: ${reason})`,
        );
        cases.push(skipped(benchCase, `API refuses Content-Encoding ${benchCase.encoding}`));
        continue;
      }
      try {
        const { result, stages } = await measureCase(tools, benchCase);
        cases.push(result);
        stageRows.push(stages);
        console.log(
          `  ${benchCase.name.padEnd(20)} raw ${result.raw_fps?.toFixed(1).padStart(6)} fps   service ` +
            `${result.service_fps?.toFixed(1).padStart(6)} fps   ratio ${result.ratio?.toFixed(2)}   ` +
            `(at ${elapsed()}, load ${result.load_1m})`,
        );
      } catch (error) {
        failures++;
        const message = (error as Error).message.split('\n')[0];
        console.error(`  ${benchCase.name}: FAILED: ${message}`);
        for (const name of ['api', options.workerName]) {
          for (const line of stack.logsOf(name).slice(-5))
            console.error(`    [${name}] ${line.slice(0, 300)}`);
        }
        cases.push(skipped(benchCase, `failed: ${message}`));
      }
    }

    const report: BenchReport = {
      profile: profile.name,
      started_at: startedAt.toISOString(),
      duration_s: (Date.now() - startedAt.getTime()) / 1000,
      machine: finish(machine),
      setup: {
        concurrency,
        clients_in_flight: inFlight,
        format: FRAME_FORMAT,
        settings: { ...SETTINGS },
        note:
          'raw = libs/codecs encoders in the bench process, sharp and ffmpeg sized as on the node; service = ' +
          'POST /v1/jobs -> SSE completed -> GET outputs, with a stack of its own on this machine',
      },
      cases,
      stages: {
        method: STAGE_METHOD,
        definitions: Object.fromEntries(SERVICE_STAGES.map((stage) => [stage.key, stage.explain])),
        service_ms_per_frame: stageRows,
        isolated,
      },
      copies: { count: countCopies(), path: SERVICE_PATH_COPIES, compressed_uploads: COMPRESSED_UPLOAD_NOTE },
    };
    return { report, failures };
  } finally {
    service.close();
    redisCounters.close();
  }
}
