import http from 'node:http';
import { EncoderApiClient, type AcceptedJob } from '#client';
import { encodeLz4BlockRecordSync } from '#codecs';
import type { JobTimings } from '#contracts';
import { caseThroughput, FRAME_FORMAT, SETTINGS, type BenchCase, type UploadEncoding } from './cases.js';
import type { FrameLibrary } from './frames.js';
import { postParts } from './http.js';
import { runLanes } from './lanes.js';

/**
 * One job as the bench saw it. Client stamps and the job record's stamps are all `Date.now()` on the
 * same host (the whole stack runs on this machine), so differences across processes are meaningful
 * to the millisecond.
 */
export interface JobSample {
  id: string;
  frames: number;
  outputBytes: number;
  /** Times the event stream ended before the job's final event and was resumed (Last-Event-ID). */
  sseResumes: number;
  /** Client: request started, 202 received, `completed` event received, all outputs downloaded. */
  postStartAt: number;
  acceptedAt: number;
  completedAt: number;
  outputsAt: number;
  /** Job record: frames stored (the API creates the job after the upload), node started, node finished. */
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  /** The node's own account (absent on nodes that do not record it). */
  timings: JobTimings | null;
}

/** What the client saw of a job; `samples` adds what the job record says. */
export type ClientJob = Omit<JobSample, 'createdAt' | 'startedAt' | 'finishedAt' | 'timings'>;

export interface ServiceRun {
  frames: number;
  seconds: number;
  fps: number;
  /** From the first request to the first job's outputs at the client: the pipeline filling up. */
  firstOutputSeconds: number;
  outputBytes: number;
  jobs: ClientJob[];
}

const MAX_SSE_RESUMES = 5;

/** A promise with its resolve function. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => undefined as void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/**
 * Drives the running service as `inFlight` concurrent clients would: each POSTs a job's frames to
 * /v1/jobs, follows the job's SSE events until `completed`, downloads every output, then submits the
 * next job. Uploads go through node:http without copying the frames; the rest uses EncoderApiClient.
 */
export class ServiceDriver {
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly client: EncoderApiClient;

  constructor(private readonly apiUrl: string) {
    this.client = new EncoderApiClient(apiUrl);
  }

  /** Null when the API takes uploads in this encoding; otherwise its answer to a tiny test job. */
  async unsupported(encoding: UploadEncoding): Promise<string | null> {
    if (encoding === 'identity') return null;
    const frame = Buffer.alloc(16 * 16 * 4, 0x80);
    const reply = await this.submit(
      { codec: 'jpeg', width: 16, height: 16, format: FRAME_FORMAT, frames: 1 },
      encodeLz4BlockRecordSync(frame),
      encoding,
    ).catch((error: Error) => error);
    if (reply instanceof Error) return reply.message;
    await this.client.waitFor(reply.id);
    return null;
  }

  /** Not measured: one short job per client, so that connections are open and the node has run the codec. */
  async warmUp(benchCase: BenchCase, library: FrameLibrary, inFlight: number): Promise<void> {
    const short = { ...benchCase, framesPerJob: Math.min(benchCase.framesPerJob, 2) };
    await runLanes(inFlight, inFlight, (job) => this.oneJob(short, library, job));
  }

  /**
   * Closed loop, timed from the first request to the last output. The clients start one after the
   * other (each once the previous one's first upload is accepted) rather than all at once, so that
   * the first job is not held up by sharing the upload with all the others; from then on they run
   * freely. What remains of the pipeline filling up is the service's to pay (`firstOutputSeconds`).
   */
  async run(benchCase: BenchCase, library: FrameLibrary, inFlight: number): Promise<ServiceRun> {
    const starts = Array.from({ length: inFlight }, gate);
    starts[0].open();
    const started = performance.now();
    const jobs = await runLanes(benchCase.jobs, inFlight, async (job) => {
      if (job >= inFlight) return this.oneJob(benchCase, library, job);
      await starts[job].opened;
      return this.oneJob(benchCase, library, job, () => starts[job + 1]?.open());
    });
    return {
      ...caseThroughput(benchCase, started),
      firstOutputSeconds:
        (Math.min(...jobs.map((job) => job.outputsAt)) - Math.min(...jobs.map((job) => job.postStartAt))) /
        1000,
      outputBytes: jobs.reduce((sum, job) => sum + job.outputBytes, 0),
      jobs,
    };
  }

  /** Adds each job record's stamps and timings (read after the measurement, so as not to slow it). */
  samples(jobs: ClientJob[]): Promise<JobSample[]> {
    return Promise.all(jobs.map((job) => this.withRecord(job)));
  }

  close(): void {
    this.agent.destroy();
  }

  private async oneJob(
    benchCase: BenchCase,
    library: FrameLibrary,
    job: number,
    onAccepted?: () => void,
  ): Promise<ClientJob> {
    const { width, height } = benchCase.resolution;
    const body = library.jobBody(benchCase, job);
    const postStartAt = Date.now();
    const accepted = await this.submit(
      {
        codec: benchCase.codec,
        width,
        height,
        format: FRAME_FORMAT,
        frames: benchCase.framesPerJob,
        ...SETTINGS,
      },
      body,
      benchCase.encoding,
    );
    const acceptedAt = Date.now();
    onAccepted?.();
    const { completedAt, outputs, sseResumes } = await this.completion(accepted.id);
    let outputBytes = 0;
    for (let index = 0; index < outputs; index++) {
      outputBytes += (await this.client.output(accepted.id, index)).data.length;
    }
    return {
      id: accepted.id,
      frames: benchCase.framesPerJob,
      outputBytes,
      sseResumes,
      postStartAt,
      acceptedAt,
      completedAt,
      outputsAt: Date.now(),
    };
  }

  /**
   * Follows the job's events to its final one. A stream that ends before it is resumed after the last
   * event seen, as EventSource would, and counted: the service should never end a stream early.
   */
  private async completion(
    id: string,
  ): Promise<{ completedAt: number; outputs: number; sseResumes: number }> {
    let lastEventId: string | undefined;
    for (let resumes = 0; resumes <= MAX_SSE_RESUMES; resumes++) {
      for await (const event of this.client.events(id, lastEventId)) {
        lastEventId = event.id ?? lastEventId;
        if (event.type === 'failed') throw new Error(`job ${id} failed: ${event.error}`);
        if (event.type === 'completed')
          return { completedAt: Date.now(), outputs: event.outputs, sseResumes: resumes };
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`the events of job ${id} ended ${MAX_SSE_RESUMES + 1} times before its final event`);
  }

  private async submit(
    params: Record<string, string | number>,
    body: Buffer[],
    encoding: UploadEncoding,
  ): Promise<AcceptedJob> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) query.set(key, String(value));
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (encoding === 'lz4') headers['content-encoding'] = 'lz4-block';
    const reply = await postParts(`${this.apiUrl}/v1/jobs?${query}`, body, headers, this.agent);
    if (reply.status !== 202) throw new Error(`POST /v1/jobs answered ${reply.status}: ${reply.body}`);
    return JSON.parse(reply.body) as AcceptedJob;
  }

  private async withRecord(job: ClientJob): Promise<JobSample> {
    const record = await this.client.job(job.id);
    const ms = (iso: string | null) => (iso ? Date.parse(iso) : NaN);
    return {
      ...job,
      createdAt: ms(record.createdAt),
      startedAt: ms(record.startedAt),
      finishedAt: ms(record.finishedAt),
      timings: record.timings ?? null,
    };
  }
}
