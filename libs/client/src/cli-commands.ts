import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { StreamView } from '#contracts';
import type { FollowCommand, JobCommand, NodesCommand, StreamCommand } from './cli-args.js';
import { defaultSleep, EndpointPool } from './endpoint-pool.js';
import { openFrameSource, type FrameSource } from './frame-source.js';
import { LiveSession } from './live-session.js';
import { formatNodesTable } from './nodes-table.js';
import { orderedMap } from './ordered.js';
import { jobOutputName, OutputWriter } from './output-writers.js';
import { formatProgress, progressBar, ProgressReporter, type StreamProgress } from './progress.js';
import { BatchLatency } from './stats.js';
import {
  StreamClient,
  type OutputEvent,
  type StreamEventWithData,
  type StreamEventWithId,
} from './stream-client.js';

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  now?: () => number;
  /** Ctrl-C: stop sending, close the stream, let the acknowledged batches arrive. */
  interrupt?: AbortSignal;
}

/** The JSON line `stream` and `follow` print at the end. */
export interface StreamSummary {
  streamId: string;
  codec: string;
  mode: string;
  frames: number;
  batches: number;
  outputs: number;
  bytes: number;
  seconds: number;
  fps: number;
  latencyMs: { p50: number | null; p99: number | null };
  keyframes: number;
  failovers: number;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function clientFor(
  command: { endpoints: StreamCommand['endpoints']; apiKey?: string; retryForMs: number },
  log: (line: string) => void,
): StreamClient {
  const pool = new EndpointPool(command.endpoints, {
    deadlineMs: command.retryForMs,
    onStateChange: (endpoint, change, reason) =>
      log(
        change === 'down'
          ? `API server ${endpoint.url} is down: ${reason}`
          : `API server ${endpoint.url} is back`,
      ),
  });
  return new StreamClient(pool, { apiKey: command.apiKey, deadlineMs: command.retryForMs });
}

/** What a follower counted, and the latency of each batch. */
class StreamTally {
  readonly latency = new BatchLatency();
  framesSubmitted = 0;
  batchesSubmitted = 0;
  framesDelivered = 0;
  batchesDelivered = 0;
  outputs = 0;
  bytes = 0;
  keyframes = 0;
  missed = 0;
  readonly failedBatches: string[] = [];

  constructor(private readonly now: () => number) {}

  /** An event as it arrives (before any fetch or write). */
  arrived(event: StreamEventWithId | StreamEventWithData, log: (line: string) => void): void {
    const at = this.now();
    switch (event.type) {
      case 'output':
        this.outputs += 1;
        this.bytes += 'data' in event ? event.data.length : event.bytes;
        if (event.keyframe) this.keyframes += 1;
        this.latency.output(event.seq, at);
        break;
      case 'batch':
        this.framesDelivered += event.frames;
        this.batchesDelivered += 1;
        this.latency.done(event.seq, at);
        break;
      case 'batch-failed':
        this.failedBatches.push(`batch ${event.seq} (job ${event.jobId}): ${event.error}`);
        this.latency.done(event.seq, at, true);
        log(`batch ${event.seq} failed: ${event.error}`);
        break;
      case 'fell-behind':
        this.missed += event.missed;
        log(
          `fell behind: events ${event.from}..${event.to} (${event.missed}) were trimmed before they were read`,
        );
        break;
      case 'end':
        break;
    }
  }

  /** A session output (one frame's packet): an output and a delivered one-frame batch at once. */
  sessionOutput(frame: number, bytes: number, keyframe: boolean): void {
    const at = this.now();
    this.outputs += 1;
    this.bytes += bytes;
    if (keyframe) this.keyframes += 1;
    this.latency.output(frame, at);
    this.latency.done(frame, at);
    this.framesDelivered += 1;
    this.batchesDelivered += 1;
  }
}

/** Follows a stream to its end, recording each event in `tally` and writing outputs to `writer`. */
async function followStream(
  client: StreamClient,
  view: StreamView,
  options: {
    transport: 'ws' | 'sse';
    since: number;
    writer?: OutputWriter;
    tally: StreamTally;
    signal: AbortSignal;
    log: (line: string) => void;
    onEvent: () => void;
  },
): Promise<void> {
  const { writer, tally, signal, log } = options;
  const onReconnect = (info: { endpoint: string; lastEventId: number; error: unknown }) =>
    log(
      `lost the event stream at ${info.endpoint} (${message(info.error)}); resuming after event ${info.lastEventId}`,
    );
  const follow = { since: options.since, signal, onReconnect };
  if (options.transport === 'ws') {
    for await (const event of client.followWs(view.id, follow)) {
      tally.arrived(event, log);
      if (event.type === 'output' && writer) await writer.write(event, event.data);
      options.onEvent();
    }
    return;
  }
  const fetched = orderedMap(
    client.follow(view.id, follow),
    async (event) => {
      tally.arrived(event, log);
      const data =
        event.type === 'output' && writer
          ? await client.output((event as OutputEvent).url, { signal })
          : undefined;
      return { event, data };
    },
    8,
  );
  for await (const { event, data } of fetched) {
    if (event.type === 'output' && writer && data) await writer.write(event, data);
    options.onEvent();
  }
}

function summary(
  view: StreamView,
  tally: StreamTally,
  frames: number,
  batches: number,
  seconds: number,
  failovers: number,
): StreamSummary {
  return {
    streamId: view.id,
    codec: view.codec,
    mode: view.mode,
    frames,
    batches,
    outputs: tally.outputs,
    bytes: tally.bytes,
    seconds: round(seconds, 3),
    fps: seconds > 0 ? round(tally.framesDelivered / seconds, 1) : 0,
    latencyMs: tally.latency.summary(),
    keyframes: tally.keyframes,
    failovers,
  };
}

function problems(tally: StreamTally): string[] {
  const list = [...tally.failedBatches];
  if (tally.missed > 0)
    list.push(`${tally.missed} event(s) were missed (the client fell behind the server's log)`);
  return list;
}

/** The progress line of a run that sends `total` frames and times them (`stream`, over POST or a session). */
function sendProgress(
  tally: StreamTally,
  total: number,
  elapsedMs: number,
  failovers: number,
): StreamProgress {
  return {
    delivered: tally.framesDelivered,
    submitted: tally.framesSubmitted,
    total,
    elapsedMs,
    p50Ms: tally.latency.summary().p50,
    failovers,
    failedBatches: tally.failedBatches.length,
  };
}

/** The end of a run: outputs flushed, the last progress line, the summary line; returns the exit code. */
async function finishRun(
  io: CliIo,
  run: {
    view: StreamView;
    tally: StreamTally;
    writer?: OutputWriter;
    draw: (force: boolean) => void;
    progress: ProgressReporter;
    seconds: () => number;
  },
  counted: 'submitted' | 'delivered',
  failovers: number,
  failure: unknown,
): Promise<number> {
  const { view, tally } = run;
  await run.writer?.close();
  run.draw(true);
  run.progress.finish();
  const [frames, batches] =
    counted === 'submitted'
      ? [tally.framesSubmitted, tally.batchesSubmitted]
      : [tally.framesDelivered, tally.batchesDelivered];
  io.stdout.write(`${JSON.stringify(summary(view, tally, frames, batches, run.seconds(), failovers))}\n`);
  return exitCode(failure, tally, io);
}

/** 1 on a failure, a failed batch or missed events; 130 when interrupted (Ctrl-C); else 0. */
function exitCode(failure: unknown, tally: StreamTally, io: CliIo): number {
  if (io.interrupt?.aborted) {
    io.stderr.write('interrupted\n');
    return 130;
  }
  if (failure !== undefined) {
    io.stderr.write(`error: ${message(failure)}\n`);
    return 1;
  }
  const issues = problems(tally);
  if (issues.length > 0) {
    io.stderr.write(`error: ${issues.join('; ')}\n`);
    return 1;
  }
  return 0;
}

/** `stream`: create, send (and follow, concurrently), close, summarise. Returns the exit code. */
export async function runStream(command: StreamCommand, io: CliIo): Promise<number> {
  const now = io.now ?? Date.now;
  const progress = new ProgressReporter(io.stderr, { tty: io.stderr.isTTY === true || command.progress });
  const log = (line: string) => progress.log(line);
  const client = clientFor(command, log);
  const source = await openFrameSource(command.source, command);
  const started = now();
  const view = await client.create({
    codec: command.codec,
    accept: command.accept,
    width: source.width,
    height: source.height,
    format: source.format,
    fps: command.fps,
    quality: command.quality,
    speed: command.speed,
    mode: command.mode,
    pool: command.pool,
    keyframeInterval: command.keyframeInterval,
  });
  if (view.mode === 'live' && command.live !== 'post') {
    if (view.session) return runSession(command, io, { client, view, source, progress, started });
    log(`stream ${view.id} has no session (its node has no data port): sending through POST /frames`);
  }
  log(
    `stream ${view.id}: ${view.codec} ${view.mode}, ${source.width}x${source.height} ${source.format}, ` +
      `${source.frames} frame(s) in batches of ${command.batch}${view.node ? `, node ${view.node}` : ''}`,
  );
  const writer = command.out ? new OutputWriter(command.out, view) : undefined;
  const tally = new StreamTally(now);
  const draw = (force = false) =>
    progress.update(
      formatProgress(sendProgress(tally, source.frames, now() - started, client.failovers)),
      force,
    );
  const abort = new AbortController();
  const following = followStream(client, view, {
    transport: command.transport,
    since: 0,
    writer,
    tally,
    signal: abort.signal,
    log,
    onEvent: () => draw(),
  }).catch((error: unknown) => {
    abort.abort(error);
    throw error;
  });
  following.catch(() => undefined);

  let failure: unknown;
  const stop = AbortSignal.any([abort.signal, ...(io.interrupt ? [io.interrupt] : [])]);
  try {
    const sendStart = now();
    for await (const batch of source.batches(command.batch)) {
      if (stop.aborted) break;
      if (command.realtime) {
        const wait = sendStart + (batch.firstFrame * 1000) / view.fps - now();
        if (wait > 0) await defaultSleep(wait, stop);
      }
      const submitStart = now();
      const accepted = await client.submitFrames(view.id, batch.body, batch.frames, {
        signal: abort.signal, // not the interrupt: a batch on its way is finished, so it is counted
      });
      tally.framesSubmitted += accepted.frames;
      tally.batchesSubmitted += 1;
      tally.latency.submitted(accepted.seq, submitStart);
      draw();
    }
  } catch (error) {
    if (!stop.aborted) failure = error;
  }
  if (io.interrupt?.aborted && !abort.signal.aborted)
    log('interrupted: closing the stream; waiting for the batches sent');
  try {
    await client.close(view.id);
  } catch (error) {
    failure ??= error;
  }
  try {
    await following;
  } catch (error) {
    failure = error;
  }
  const seconds = () => (now() - started) / 1000;
  const run = { view, tally, writer, draw, progress, seconds };
  return finishRun(io, run, 'submitted', client.failovers, failure);
}

/**
 * `stream --mode live` over the stream's session: frames one by one straight to the node (or through
 * the API's relay), as many in flight as its window, outputs written as they come; the session fails
 * over by itself. Then DELETE, as the POST path does.
 */
async function runSession(
  command: StreamCommand,
  io: CliIo,
  context: {
    client: StreamClient;
    view: StreamView;
    source: FrameSource;
    progress: ProgressReporter;
    started: number;
  },
): Promise<number> {
  const { client, view, source, progress, started } = context;
  const now = io.now ?? Date.now;
  const log = (line: string) => progress.log(line);
  const session = await LiveSession.open(client, view, {
    viaApi: command.live === 'relay',
    frameTimeoutMs: command.frameTimeoutMs,
    reconnectForMs: command.retryForMs,
    onFailover: (failover) =>
      log(
        `lost the session on node ${failover.node} (${failover.reason}); ` +
          `${failover.reported ? 'reported the node, ' : ''}reconnecting`,
      ),
  });
  log(
    `stream ${view.id}: ${view.codec} live, ${source.width}x${source.height} ${source.format}, ` +
      `${source.frames} frame(s) over its session${command.live === 'relay' ? ' (through the API relay)' : ''} ` +
      `on node ${session.node}, ${session.window} in flight at most`,
  );
  const writer = command.out ? new OutputWriter(command.out, view) : undefined;
  const tally = new StreamTally(now);
  const draw = (force = false) =>
    progress.update(
      formatProgress(sendProgress(tally, source.frames, now() - started, session.failovers)),
      force,
    );
  const reading = (async () => {
    for await (const output of session) {
      tally.sessionOutput(output.frame, output.data.length, output.keyframe);
      if (writer) await writer.write({ seq: output.frame, index: 0, ...output }, output.data);
      draw();
    }
  })();
  reading.catch(() => undefined);

  let failure: unknown;
  try {
    const sendStart = now();
    for await (const batch of source.batches(1)) {
      if (io.interrupt?.aborted) break;
      if (command.realtime) {
        const wait = sendStart + (batch.firstFrame * 1000) / view.fps - now();
        if (wait > 0) await defaultSleep(wait, io.interrupt).catch(() => undefined);
        if (io.interrupt?.aborted) break;
      }
      const frame = await session.send(batch.body);
      tally.latency.submitted(frame, now());
      tally.framesSubmitted += 1;
      tally.batchesSubmitted += 1;
      draw();
    }
    if (io.interrupt?.aborted)
      log('interrupted: waiting for the outputs of the frames sent, closing the stream');
    await session.close();
  } catch (error) {
    failure = error;
    session.abort(error);
  }
  try {
    await reading;
  } catch (error) {
    failure ??= error;
  }
  try {
    await client.close(view.id);
  } catch (error) {
    failure ??= error;
  }
  const seconds = () => (now() - started) / 1000;
  const run = { view, tally, writer, draw, progress, seconds };
  return finishRun(io, run, 'submitted', session.failovers, failure);
}

/** `follow <streamId>`: follow an existing stream to its end, write its outputs, summarise. */
export async function runFollow(command: FollowCommand, io: CliIo): Promise<number> {
  const now = io.now ?? Date.now;
  const progress = new ProgressReporter(io.stderr, { tty: io.stderr.isTTY === true || command.progress });
  const log = (line: string) => progress.log(line);
  const client = clientFor(command, log);
  const started = now();
  const view = await client.get(command.streamId);
  log(`stream ${view.id}: ${view.codec} ${view.mode}, ${view.state}, ${view.batches} batch(es) so far`);
  const writer = command.out ? new OutputWriter(command.out, view) : undefined;
  const tally = new StreamTally(now);
  const draw = (force = false) =>
    progress.update(
      formatProgress({
        delivered: tally.framesDelivered,
        submitted: Math.max(tally.framesDelivered, view.frames),
        elapsedMs: now() - started,
        p50Ms: null,
        failovers: client.failovers,
        failedBatches: tally.failedBatches.length,
      }),
      force,
    );
  const abort = new AbortController();
  const interrupted = () => abort.abort(new Error('interrupted'));
  io.interrupt?.addEventListener('abort', interrupted, { once: true });
  let failure: unknown;
  try {
    await followStream(client, view, {
      transport: command.transport,
      since: command.since,
      writer,
      tally,
      signal: abort.signal,
      log,
      onEvent: () => draw(),
    });
  } catch (error) {
    failure = error;
  } finally {
    io.interrupt?.removeEventListener('abort', interrupted);
  }
  const seconds = () => (now() - started) / 1000;
  const run = { view, tally, writer, draw, progress, seconds };
  return finishRun(io, run, 'delivered', client.failovers, failure);
}

const IMAGE_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
};

/** `job`: one-off job through POST /v1/jobs; waits; writes its outputs; summarises. */
export async function runJob(command: JobCommand, io: CliIo): Promise<number> {
  const now = io.now ?? Date.now;
  const progress = new ProgressReporter(io.stderr, { tty: io.stderr.isTTY === true });
  const log = (line: string) => progress.log(line);
  const client = clientFor(command, log);
  const started = now();
  const accept = command.accept?.split(',') as JobCommand['codec'][] | undefined;
  let accepted;
  if (command.source.kind === 'images') {
    const images = await Promise.all(
      command.source.files.map(async (file) => {
        const contentType = IMAGE_TYPES[extname(file).toLowerCase()];
        if (!contentType)
          throw new Error(`${file}: a job takes PNG, JPEG or WebP images (.png, .jpg, .jpeg, .webp)`);
        return { filename: basename(file), contentType, data: await readFile(file) };
      }),
    );
    accepted = await client.submitJobImages(
      {
        codec: command.codec,
        accept: command.accept,
        quality: command.quality,
        speed: command.speed,
        fps: command.fps,
        pool: command.pool,
        priority: command.priority,
      },
      images,
    );
  } else {
    const source = await openFrameSource(command.source, command);
    const batch = await source.batches(source.frames).next();
    if (batch.done) throw new Error('no frames to send');
    accepted = await client.submitJob(
      {
        codec: command.codec,
        accept: accept as NonNullable<JobCommand['codec']>[] | undefined,
        width: source.width,
        height: source.height,
        format: source.format,
        frames: source.frames,
        quality: command.quality,
        speed: command.speed,
        fps: command.fps,
        pool: command.pool,
        priority: command.priority,
      },
      batch.value.body,
      { compression: command.compression },
    );
  }
  log(`job ${accepted.id}: ${accepted.codec}, ${accepted.frames} frame(s), pool ${accepted.pool}`);
  for await (const event of client.followJob(accepted.id, {
    onReconnect: (info) =>
      log(`lost the job's event stream at ${info.endpoint} (${message(info.error)}); resuming`),
  })) {
    if (event.type === 'progress')
      progress.update(`job ${accepted.id} ${progressBar(event.framesDone, accepted.frames)}`);
    if (event.type === 'active')
      log(`job ${accepted.id} running on ${event.node} (attempt ${event.attempt})`);
  }
  const job = await client.job(accepted.id);
  progress.finish();
  const files: string[] = [];
  let bytes = 0;
  if (job.status === 'completed') {
    if (command.out) await mkdir(command.out, { recursive: true });
    for (const output of job.outputs) {
      bytes += output.bytes;
      if (!command.out) continue;
      const data = await client.output(output.url);
      const file = join(command.out, jobOutputName(output.contentType, output.index));
      await writeFile(file, data);
      files.push(file);
    }
  }
  const seconds = (now() - started) / 1000;
  io.stdout.write(
    `${JSON.stringify({
      jobId: job.id,
      codec: job.codec,
      status: job.status,
      frames: job.frames,
      outputs: job.outputs.length,
      bytes,
      seconds: round(seconds, 3),
      fps: seconds > 0 ? round(job.frames / seconds, 1) : 0,
      node: job.node,
      failovers: client.failovers,
      files,
    })}\n`,
  );
  if (job.status !== 'completed') {
    io.stderr.write(`error: job ${job.id} ${job.status}${job.error ? `: ${job.error}` : ''}\n`);
    return 1;
  }
  return 0;
}

/** `nodes`: the live encoder nodes as a table (or JSON). */
export async function runNodes(command: NodesCommand, io: CliIo): Promise<number> {
  const client = clientFor(command, (line) => io.stderr.write(`${line}\n`));
  const nodes = await client.nodes();
  io.stdout.write(
    command.json ? `${JSON.stringify(nodes, null, 2)}\n` : formatNodesTable(nodes, (io.now ?? Date.now)()),
  );
  return 0;
}
