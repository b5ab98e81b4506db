import http from 'node:http';
import os from 'node:os';
import WebSocket, { WebSocketServer } from 'ws';
import {
  createEncoder,
  rgbaToPixelFormat,
  syntheticRgba,
  threadsPerJob,
  type LiveVideoSession,
} from '#codecs';
import type { AcceptedBatch, JobView, StreamView, VideoCodec } from '#contracts';
import { EndpointPool, LiveSession, StreamClient, type LiveOutput } from '#client';
import type { ServiceStack } from '#scripts/lib/stack.js';
import { FRAME_FORMAT, RES_1080P, RES_720P, type Resolution } from './cases.js';
import { postParts } from './http.js';
import { runLanes } from './lanes.js';
import { mean, percentile } from './stats.js';

/**
 * Live mode (one long-running encoder per stream), measured as the issue asks: the latency a frame
 * gains on its way through the service (POST -> API -> Redis -> node's running ffmpeg -> WebSocket)
 * over the encode alone, and the frame rate of one stream against ffmpeg fed directly. The raw side
 * is a LiveVideoSession in this process with the node's settings and threads (the same ffmpeg command
 * line the node runs); the service side is a live stream on the bench's own stack.
 */

export interface LiveCase {
  codec: VideoCodec;
  resolution: Resolution;
  /** Also measure one stream's frame rate (pipelined) against ffmpeg fed back to back. */
  throughput: boolean;
  /** Frames timed one at a time, when not the profile's `latencyFrames`. */
  latencyFrames?: number;
}

export interface LiveProfile {
  name: 'full' | 'quick';
  /** Distinct synthetic frames per resolution, played forwards then backwards (no jump at the wrap). */
  distinctFrames: number;
  /** Frames sent before any clock starts (the first one starts ffmpeg and is a keyframe). */
  warmupFrames: number;
  /** Frames timed one at a time, per case and per side. */
  latencyFrames: number;
  /** Frames of the throughput runs. */
  throughputFrames: number;
  /** Frames a client may have posted without their output yet (throughput run). */
  inFlight: number;
  /** kill -9 trials of the failover measurement. */
  failoverTrials: number;
  cases: LiveCase[];
}

export function liveProfile(quick: boolean): LiveProfile {
  if (quick) {
    return {
      name: 'quick',
      distinctFrames: 12,
      warmupFrames: 5,
      latencyFrames: 40,
      throughputFrames: 80,
      inFlight: 4,
      failoverTrials: 3,
      cases: [{ codec: 'h264', resolution: RES_720P, throughput: true }],
    };
  }
  return {
    name: 'full',
    distinctFrames: 24,
    warmupFrames: 10,
    latencyFrames: 150,
    throughputFrames: 240,
    inFlight: 4,
    failoverTrials: 10,
    cases: [
      { codec: 'h264', resolution: RES_720P, throughput: true },
      { codec: 'h264', resolution: RES_1080P, throughput: true, latencyFrames: 100 },
      { codec: 'vp8', resolution: RES_720P, throughput: true, latencyFrames: 100 },
      { codec: 'vp8', resolution: RES_1080P, throughput: false, latencyFrames: 60 },
    ],
  };
}

export interface Percentiles {
  p50: number;
  p99: number;
  mean: number;
}

/**
 * A frame's way through the service, median ms: POST start -> frame stored in Redis and job created
 * (upload+store) -> node starts the batch (queue: enqueue, pickup, stream position check) -> output
 * message at the client (node+deliver: frame read from Redis, encode, output stored, event logged,
 * the API's follower reads it and sends it on the WebSocket).
 */
export interface LiveStages {
  upload_store: number;
  queue: number;
  node_to_client: number;
}

export interface LiveLatencyResult {
  name: string;
  codec: VideoCodec;
  resolution: string;
  /** Frames timed on each side (after the warm-up). */
  frames: number;
  implementation?: string;
  /** The stream's settings (the API's defaults), used for the raw session as well. */
  settings?: { quality: number; speed: number; fps: number; keyframeInterval: number; threads: number };
  /** LiveVideoSession.encode of one frame, awaited, in this process. */
  raw_ms?: Percentiles;
  /** Start of the POST -> that frame's `output` text message on the WebSocket. */
  service_ms?: Percentiles;
  /** Start of the POST -> its 202 (upload, store in Redis, queue on the node). */
  accepted_ms?: Percentiles;
  /** service - raw, percentile by percentile. */
  added_ms?: { p50: number; p99: number };
  /** The stream's session straight to the node (libs/client LiveSession): send -> that frame's output. */
  direct_ms?: Percentiles;
  direct_added_ms?: { p50: number; p99: number };
  /** A frame's trip over a loopback WebSocket with nothing encoded (transportFloor). */
  transport_ms?: Percentiles;
  /** The same session through the API's relay. */
  relay_ms?: Percentiles;
  relay_added_ms?: { p50: number; p99: number };
  /** Median ms of each part of the service's time (from the batches' job records). */
  stages_p50_ms?: LiveStages;
  /** Keyframes among the timed service outputs (each costs more than a P-frame). */
  keyframes?: number;
  /** Why the numbers are missing. */
  failed?: string;
  /** What went wrong after the numbers were taken (e.g. outputs missing at the end of the stream). */
  problem?: string;
}

export interface LiveThroughputResult {
  name: string;
  codec: VideoCodec;
  resolution: string;
  frames: number;
  /** Frames posted whose output had not arrived yet, at most. */
  in_flight: number;
  /** One LiveVideoSession.encode of all the frames: ffmpeg reads them as fast as it encodes. */
  ffmpeg_fps?: number;
  /** First POST -> last frame's output message. */
  service_fps?: number;
  ratio?: number;
  /** The raw session fed one frame at a time (1000 / mean raw latency), for reference. */
  raw_one_at_a_time_fps?: number;
  /** The stream's session, as many frames in flight as its `window`: first send -> last output. */
  session_fps?: number;
  session_ratio?: number;
  window?: number;
  failed?: string;
}

/** kill -9 of the node that holds a live stream -> the next output from the node that took it over. */
export interface LiveFailoverResult {
  trials: number;
  /** One per trial that recovered, ms. */
  ms: number[];
  under_1s: number;
  p50?: number;
  max?: number;
  /** What failed, per trial that did not recover. */
  failures: string[];
  setup: string;
}

export interface LiveReport {
  profile: 'full' | 'quick';
  duration_s: number;
  node_concurrency: number;
  load_avg_start: number[];
  load_avg_end: number[];
  method: string[];
  latency: LiveLatencyResult[];
  throughput: LiveThroughputResult[];
  failover?: LiveFailoverResult;
}

export interface LiveOptions {
  stack: ServiceStack;
  /** Starts a fresh stack (2 workers) for the failover trials, which kill nodes. */
  failoverStack?: () => Promise<ServiceStack>;
  /** The stack's one worker: its name (for its logs) and concurrency (ffmpeg threads = cores / that). */
  workerName: string;
  concurrency: number;
  quick: boolean;
}

const OUTPUT_TIMEOUT_MS = 30_000;
const END_TIMEOUT_MS = 15_000;

const loadAverage = () => os.loadavg().map((value) => Math.round(value * 100) / 100);

/** What a side adds to the encode alone, frame by frame (side - raw of the same frame): p50 and p99. */
function added(side: number[], raw: number[]): { p50: number; p99: number } {
  const differences = side.map((ms, index) => ms - raw[index]);
  return { p50: percentile(differences, 50), p99: percentile(differences, 99) };
}

function percentiles(samples: number[]): Percentiles {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), mean: mean(samples) };
}

/** Desktop-like frames in the bench's pixel format, generated before any clock starts. */
function liveFrames(resolution: Resolution, distinct: number): Buffer[] {
  const { width, height } = resolution;
  return Array.from({ length: distinct }, (_, index) =>
    rgbaToPixelFormat(syntheticRgba(width, height, index), FRAME_FORMAT),
  );
}

/** Frame `index` of the sequence 0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...: motion without a jump. */
function frameAt(frames: Buffer[], index: number): Buffer {
  if (frames.length === 1) return frames[0];
  const period = 2 * frames.length - 2;
  const phase = index % period;
  return frames[phase < frames.length ? phase : period - phase];
}

// ---------------------------------------------------------------------------------------------
// Raw: the node's live encoder, in this process

async function rawLatency(
  session: LiveVideoSession,
  frames: Buffer[],
  from: number,
  count: number,
): Promise<number[]> {
  const samples: number[] = [];
  for (let index = from; index < from + count; index++) {
    const started = performance.now();
    await session.encode([frameAt(frames, index)], 1);
    samples.push(performance.now() - started);
  }
  return samples;
}

/** All the frames in one encode call: ffmpeg takes the next frame as soon as it is done with one. */
async function rawBackToBack(
  session: LiveVideoSession,
  frames: Buffer[],
  from: number,
  count: number,
): Promise<number> {
  const batch = Array.from({ length: count }, (_, index) => frameAt(frames, from + index));
  const started = performance.now();
  const packets = await session.encode(batch, count);
  const seconds = (performance.now() - started) / 1000;
  if (packets.length !== count) throw new Error(`raw: ${packets.length} packets for ${count} frames`);
  return count / seconds;
}

// ---------------------------------------------------------------------------------------------
// Service: a live stream over HTTP (node:http, no copies of the frames) and its WebSocket

interface Arrival {
  /** performance.now() when the output's text message arrived. */
  at: number;
  /** Date.now() then, to set beside the job record's stamps (same host, same clock). */
  wallAt: number;
  keyframe: boolean;
  bytes: number;
}

interface Waiter {
  resolve(arrival: Arrival): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Follows a stream's WebSocket: each `output` text message (stamped on arrival) and the binary message
 * with its bytes that follows it. Anything else than outputs of a healthy stream (a failed batch,
 * events missed, the socket closing early) fails whoever waits, with what was seen.
 */
class StreamSocket {
  private readonly arrivals = new Map<number, Arrival>();
  private readonly waiters = new Map<number, Waiter>();
  private pending: { frame: number; at: number; wallAt: number; keyframe: boolean } | null = null;
  private failure: Error | null = null;
  private readonly seen: string[] = [];
  outputs = 0;
  ended = false;
  readonly closed: Promise<void>;

  private constructor(private readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        if (!this.ended)
          this.fail(`the WebSocket closed (${code} ${reason.toString()}) before the stream ended`);
        resolve();
      });
    });
    ws.on('message', (data: Buffer, isBinary: boolean) =>
      this.onMessage(data, isBinary, performance.now(), Date.now()),
    );
    ws.on('error', (error) => this.fail(`WebSocket error: ${error.message}`));
  }

  static open(url: string): Promise<StreamSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const socket = new StreamSocket(ws);
      ws.once('open', () => resolve(socket));
      ws.once('error', reject);
    });
  }

  /** The arrival of frame `frame`'s output (once its bytes are in too). */
  output(frame: number): Promise<Arrival> {
    const arrived = this.arrivals.get(frame);
    if (arrived) {
      this.arrivals.delete(frame);
      return Promise.resolve(arrived);
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(frame);
        reject(
          new Error(
            `no output for frame ${frame} within ${OUTPUT_TIMEOUT_MS} ms; last messages: ${this.seen.join(' | ') || 'none'}`,
          ),
        );
      }, OUTPUT_TIMEOUT_MS);
      this.waiters.set(frame, { resolve, reject, timer });
    });
  }

  close(): void {
    this.ws.terminate();
  }

  private onMessage(data: Buffer, isBinary: boolean, at: number, wallAt: number): void {
    if (isBinary) {
      const pending = this.pending;
      if (!pending) return this.fail('a binary message without an output message before it');
      this.pending = null;
      this.outputs++;
      const { frame, ...arrival } = pending;
      this.deliver(frame, { ...arrival, bytes: data.length });
      return;
    }
    const text = data.toString('utf8');
    this.seen.push(text.slice(0, 200));
    if (this.seen.length > 4) this.seen.shift();
    const message = JSON.parse(text) as {
      type: string;
      frame?: number;
      keyframe?: boolean;
      error?: string;
      seq?: number;
    };
    switch (message.type) {
      case 'output':
        if (typeof message.frame !== 'number') return this.fail(`an output message without a frame: ${text}`);
        this.pending = { frame: message.frame, at, wallAt, keyframe: message.keyframe === true };
        return;
      case 'batch':
        return;
      case 'end':
        this.ended = true;
        return;
      case 'batch-failed':
        return this.fail(`batch ${message.seq} failed: ${message.error}`);
      default:
        return this.fail(`unexpected message: ${text}`);
    }
  }

  private deliver(frame: number, arrival: Arrival): void {
    const waiter = this.waiters.get(frame);
    if (!waiter) {
      this.arrivals.set(frame, arrival);
      return;
    }
    this.waiters.delete(frame);
    clearTimeout(waiter.timer);
    waiter.resolve(arrival);
  }

  private fail(what: string): void {
    this.failure ??= new Error(`stream WebSocket: ${what}`);
    for (const waiter of this.waiters.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(this.failure);
    }
    this.waiters.clear();
  }
}

function request(method: string, url: string, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, { method, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** One live stream of the service, driven over the wire. */
class LiveStream {
  private constructor(
    private readonly apiUrl: string,
    private readonly agent: http.Agent,
    readonly view: StreamView,
    readonly socket: StreamSocket,
  ) {}

  /** Creates a live stream with the API's default settings and opens its WebSocket. */
  static async open(apiUrl: string, agent: http.Agent, liveCase: LiveCase): Promise<LiveStream> {
    const { width, height } = liveCase.resolution;
    const body = Buffer.from(
      JSON.stringify({ codec: liveCase.codec, mode: 'live', width, height, format: FRAME_FORMAT }),
    );
    const reply = await postParts(
      `${apiUrl}/v1/streams`,
      [body],
      { 'content-type': 'application/json' },
      agent,
    );
    if (reply.status !== 201) throw new Error(`POST /v1/streams answered ${reply.status}: ${reply.body}`);
    const view = JSON.parse(reply.body) as StreamView;
    const socket = await StreamSocket.open(
      `${apiUrl.replace(/^http/, 'ws')}/v1/streams/${view.id}/ws?since=0`,
    );
    return new LiveStream(apiUrl, agent, view, socket);
  }

  /** POSTs one frame; resolves with the 202's batch. */
  async submit(frame: Buffer): Promise<AcceptedBatch> {
    const reply = await postParts(
      `${this.apiUrl}/v1/streams/${this.view.id}/frames?frames=1`,
      [frame],
      { 'content-type': 'application/octet-stream' },
      this.agent,
    );
    if (reply.status !== 202) {
      throw new Error(`POST /v1/streams/${this.view.id}/frames answered ${reply.status}: ${reply.body}`);
    }
    return JSON.parse(reply.body) as AcceptedBatch;
  }

  /** The job record of one batch (GET /v1/jobs/:id). */
  async job(jobId: string): Promise<JobView> {
    const reply = await request('GET', `${this.apiUrl}/v1/jobs/${jobId}`, this.agent);
    if (reply.status !== 200)
      throw new Error(`GET /v1/jobs/${jobId} answered ${reply.status}: ${reply.body}`);
    return JSON.parse(reply.body) as JobView;
  }

  /** DELETE, then the `end` message and the server closing the socket; checks every output came. */
  async end(submitted: number): Promise<void> {
    const reply = await request('DELETE', `${this.apiUrl}/v1/streams/${this.view.id}`, this.agent);
    if (reply.status !== 200) throw new Error(`DELETE /v1/streams/${this.view.id} answered ${reply.status}`);
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      this.socket.closed.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), END_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!closed) throw new Error(`the WebSocket stayed open ${END_TIMEOUT_MS} ms after DELETE`);
    if (!this.socket.ended) throw new Error('the WebSocket closed without an end message');
    if (this.socket.outputs !== submitted) {
      throw new Error(`${submitted} frames submitted, ${this.socket.outputs} outputs delivered`);
    }
  }

  close(): void {
    this.socket.close();
  }
}

interface ServiceSent {
  jobId: string;
  postAt: number;
  outputAt: number;
}

/** One frame in flight: each POST starts once the previous frame's output (and bytes) arrived. */
async function serviceLatency(stream: LiveStream, frames: Buffer[], from: number, count: number) {
  const total: number[] = [];
  const accepted: number[] = [];
  const sent: ServiceSent[] = [];
  let keyframes = 0;
  for (let index = from; index < from + count; index++) {
    const postAt = Date.now();
    const started = performance.now();
    const batch = await stream.submit(frameAt(frames, index));
    accepted.push(performance.now() - started);
    const arrival = await stream.socket.output(batch.firstFrame);
    total.push(arrival.at - started);
    sent.push({ jobId: batch.jobId, postAt, outputAt: arrival.wallAt });
    if (arrival.keyframe) keyframes++;
  }
  return { total, accepted, keyframes, sent };
}

/**
 * Where the timed frames' time went, from each batch's job record (read after the timing): the API
 * creates the job once the frame is stored in Redis, the node stamps it when it starts it.
 */
async function serviceStages(
  stream: LiveStream,
  sent: { jobId: string; postAt: number; outputAt: number }[],
): Promise<LiveStages> {
  const records = await runLanes(sent.length, 4, (index) => stream.job(sent[index].jobId));
  const uploadStore: number[] = [];
  const queue: number[] = [];
  const nodeToClient: number[] = [];
  records.forEach((record, index) => {
    const createdAt = Date.parse(record.createdAt);
    const startedAt = record.startedAt ? Date.parse(record.startedAt) : NaN;
    uploadStore.push(createdAt - sent[index].postAt);
    queue.push(startedAt - createdAt);
    nodeToClient.push(sent[index].outputAt - startedAt);
  });
  const p50 = (values: number[]) => percentile(values.filter(Number.isFinite), 50);
  return { upload_store: p50(uploadStore), queue: p50(queue), node_to_client: p50(nodeToClient) };
}

/**
 * As fast as the service takes them: each POST starts once the previous one is acknowledged, with at
 * most `inFlight` frames posted whose output has not arrived. Timed from the first POST to the last
 * frame's output message.
 */
async function serviceThroughput(
  stream: LiveStream,
  frames: Buffer[],
  from: number,
  count: number,
  inFlight: number,
): Promise<number> {
  const posted: number[] = [];
  const arrivals: Promise<Arrival>[] = [];
  const started = performance.now();
  for (let index = 0; index < count; index++) {
    if (index >= inFlight) await arrivals[index - inFlight];
    const batch = await stream.submit(frameAt(frames, from + index));
    posted.push(batch.firstFrame);
    const arrival = stream.socket.output(batch.firstFrame);
    arrival.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
    arrivals.push(arrival);
  }
  const last = await Promise.all(arrivals);
  const seconds = (Math.max(...last.map((arrival) => arrival.at)) - started) / 1000;
  return count / seconds;
}

// ---------------------------------------------------------------------------------------------
// The stream's session (frames straight to the node, or through the API's relay): libs/client

/** A live stream driven over its session, as the SDK gives it to users. */
class SessionStream {
  private constructor(
    private readonly client: StreamClient,
    readonly view: StreamView,
    readonly session: LiveSession,
    private readonly outputs: AsyncIterator<LiveOutput>,
  ) {}

  static async open(apiUrl: string, liveCase: LiveCase, viaApi: boolean): Promise<SessionStream> {
    const client = new StreamClient(new EndpointPool(`${apiUrl}/,timeout=5`));
    const { width, height } = liveCase.resolution;
    const view = await client.create({
      codec: liveCase.codec,
      mode: 'live',
      width,
      height,
      format: FRAME_FORMAT,
    });
    if (!view.session)
      throw new Error(`stream ${view.id} came without a session grant (no data port on its node?)`);
    const session = await LiveSession.open(client, view, { viaApi });
    return new SessionStream(client, view, session, session[Symbol.asyncIterator]());
  }

  /** The next output, stamped when the caller got it. */
  async next(): Promise<LiveOutput & { at: number }> {
    const next = await this.outputs.next();
    const at = performance.now();
    if (next.done) throw new Error('the session ended before the output came');
    return { ...next.value, at };
  }

  async end(): Promise<void> {
    await this.session.close();
    await this.client.close(this.view.id);
  }

  abort(): void {
    this.session.abort();
  }
}

/** One frame in flight: send a frame, wait for its output, the next. */
async function sessionLatency(stream: SessionStream, frames: Buffer[], from: number, count: number) {
  const total: number[] = [];
  let keyframes = 0;
  for (let index = from; index < from + count; index++) {
    const started = performance.now();
    const frame = await stream.session.send(frameAt(frames, index));
    const output = await stream.next();
    if (output.frame !== frame) throw new Error(`sent frame ${frame}, got the output of ${output.frame}`);
    total.push(output.at - started);
    if (output.keyframe) keyframes++;
  }
  return { total, keyframes };
}

/** As fast as the session's window lets frames go: first send -> last output. */
async function sessionThroughput(stream: SessionStream, frames: Buffer[], from: number, count: number) {
  const started = performance.now();
  let last = started;
  const reading = (async () => {
    for (let index = 0; index < count; index++) last = (await stream.next()).at;
  })();
  reading.catch(() => undefined);
  for (let index = 0; index < count; index++) await stream.session.send(frameAt(frames, from + index));
  await reading;
  return count / ((last - started) / 1000);
}

// ---------------------------------------------------------------------------------------------
// Transport floor: what one frame's trip over a WebSocket costs here, with nothing encoded

/**
 * A frame over a loopback WebSocket to a `ws` server in this process that answers each one with a
 * small packet at once, sent as the session sends it (zero mask, no copy): one frame in flight, time =
 * send -> the answer. Client and server share this process's one thread, so this is what the socket,
 * the kernel's copies and `ws`'s framing cost, an upper bound of the transport's share of `direct`.
 */
async function transportFloor(frames: Buffer[], count: number): Promise<Percentiles> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, maxPayload: 1024 * 1024 * 1024 });
  const answer = Buffer.alloc(2000, 1);
  wss.on('connection', (socket) =>
    socket.on('message', () => {
      socket.send('{"type":"output"}');
      socket.send(answer);
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, {
    perMessageDeflate: false,
    generateMask: (mask: Buffer) => void mask.fill(0),
  });
  try {
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    let done: (() => void) | null = null;
    client.on('message', (_data, isBinary) => {
      if (isBinary) done?.();
    });
    const samples: number[] = [];
    for (let index = 0; index < count + 5; index++) {
      const started = performance.now();
      await new Promise<void>((resolve) => {
        done = resolve;
        client.send(frameAt(frames, index));
      });
      if (index >= 5) samples.push(performance.now() - started);
    }
    return percentiles(samples);
  } finally {
    client.terminate();
    wss.close();
    server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Failover: kill -9 of the pinned node, time to the next output from the node that took over

const FAILOVER_SIZE = { width: 640, height: 360 };
const FAILOVER_FPS = 30;
const FAILOVER_WAIT_MS = 15_000;

async function failoverTrial(
  stack: ServiceStack,
  frames: Buffer[],
  trial: number,
  onKill: (nodeId: string) => void,
): Promise<number> {
  const client = new StreamClient(new EndpointPool(`${stack.apiUrl}/,timeout=5`));
  const view = await client.create({ codec: 'h264', mode: 'live', ...FAILOVER_SIZE, format: FRAME_FORMAT });
  const session = await LiveSession.open(client, view);
  let killedNode: string | null = null;
  let killedAt = 0;
  let recoveredAt = 0;
  let delivered = 0;
  let stop = false;
  const reading = (async () => {
    for await (const output of session) {
      delivered++;
      if (killedNode !== null && output.node !== killedNode && recoveredAt === 0)
        recoveredAt = performance.now();
    }
  })();
  reading.catch(() => undefined);
  const sending = (async () => {
    const started = performance.now();
    for (let index = 0; !stop; index++) {
      const wait = started + (index * 1000) / FAILOVER_FPS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await session.send(frameAt(frames, index));
    }
  })();
  sending.catch(() => undefined);
  try {
    const deadline = performance.now() + FAILOVER_WAIT_MS;
    while (delivered < 20) {
      if (performance.now() > deadline)
        throw new Error(`trial ${trial}: only ${delivered} outputs before the kill`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const nodes = await stack.client.nodes();
    const pinned = nodes.find((node) => node.id === session.node);
    if (!pinned) throw new Error(`trial ${trial}: the session's node ${session.node} is not registered`);
    killedNode = pinned.id;
    onKill(pinned.id);
    killedAt = performance.now();
    const killed = stack.signalWorker(pinned.name, 'SIGKILL');
    while (recoveredAt === 0) {
      if (performance.now() - killedAt > FAILOVER_WAIT_MS)
        throw new Error(`trial ${trial}: no output within ${FAILOVER_WAIT_MS} ms of the kill`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await killed;
    const after = delivered;
    while (delivered < after + 10 && performance.now() - killedAt < FAILOVER_WAIT_MS)
      await new Promise((resolve) => setTimeout(resolve, 10));
    stop = true;
    await sending;
    await session.close();
    await client.close(view.id);
    return recoveredAt - killedAt;
  } finally {
    stop = true;
    session.abort();
  }
}

/** `trials` kills, each on a fresh stream; a new node replaces each killed one. */
async function measureFailover(options: LiveOptions, trials: number): Promise<LiveFailoverResult> {
  const setup =
    `2 nodes, a ${FAILOVER_SIZE.width}x${FAILOVER_SIZE.height} H.264 live stream over its session at ` +
    `${FAILOVER_FPS} fps; kill -9 of the node holding it after 20 outputs; time = the kill -> the first ` +
    'output from another node (the client reports the node, the API moves the stream, the client reconnects ' +
    'and re-sends)';
  const result: LiveFailoverResult = { trials, ms: [], under_1s: 0, failures: [], setup };
  if (!options.failoverStack) return { ...result, failures: ['no stack for the failover trials'] };
  const frames = liveFrames({ label: 'failover', ...FAILOVER_SIZE }, 12);
  const stack = await options.failoverStack();
  try {
    for (let trial = 1; trial <= trials; trial++) {
      let killed: string | undefined;
      try {
        const ms = await failoverTrial(stack, frames, trial, (node) => (killed = node));
        result.ms.push(ms);
        console.log(`  failover trial ${trial}: ${fixed(ms)} ms (load ${loadAverage()[0]})`);
      } catch (error) {
        result.failures.push((error as Error).message.split('\n')[0]);
        console.error(`  failover trial ${trial}: FAILED: ${(error as Error).message.split('\n')[0]}`);
      }
      if (killed === undefined || trial === trials) continue;
      // Back to two live nodes, and the killed one out of the registry, before the next trial.
      await stack.startWorker({ name: `bench-failover-${trial + 2}`, concurrency: 1, timeoutSeconds: 2 });
      const deadline = performance.now() + FAILOVER_WAIT_MS;
      while (performance.now() < deadline && (await stack.client.nodes()).some((node) => node.id === killed))
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await stack.stop();
  }
  result.under_1s = result.ms.filter((ms) => ms < 1000).length;
  if (result.ms.length > 0) {
    result.p50 = percentile(result.ms, 50);
    result.max = Math.max(...result.ms);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

export function liveMethod(inFlight: number): string[] {
  return [
    "Raw: a LiveVideoSession in the bench process with the stream's settings (the API defaults) and the " +
      "node's ffmpeg threads (cores / concurrency), i.e. the node's own ffmpeg command line; each frame " +
      'written once the previous packet is out; time = encode() call -> its packet.',
    "Service: a live stream on the bench's stack (one CPU node); single-frame batches POSTed over node:http, " +
      'one frame in flight (the next POST starts once the previous output arrived), so that a frame never ' +
      'queues behind another and the time is latency, not backlog; time = start of the POST -> that ' +
      "frame's `output` message on the stream's WebSocket. `202` = start of the POST -> its 202.",
    'Every side is timed on the same frame in turn (raw, direct, relay, POST, then the next frame), each on ' +
      'its own encoder after a warm-up (the first frame starts ffmpeg and is the keyframe), so that a load ' +
      'swing of this shared machine hits them alike; added = side - raw of the same frame, then its p50 and p99.',
    '`ws floor`: the frame over a loopback WebSocket to a `ws` server in the bench process that answers at ' +
      'once (nothing encoded, no Redis): the transport share of `direct`, measured beside it.',
    "Session: the stream's session as the SDK opens it (libs/client LiveSession): `direct` straight to the node's " +
      "data port, `relay` through the API's GET /v1/streams/:id/session; one frame in flight, time = send() -> " +
      "that frame's output (header and packet) in the caller's hands. Each side has its own stream (own encoder).",
    `Throughput: one stream, each POST once the previous one was acknowledged and at most ${inFlight} frames ` +
      'posted without their output, timed first POST -> last output message; ffmpeg direct = the same ' +
      'session given all the frames in one encode() call (ffmpeg reads the next frame as soon as it can). ' +
      "The session's frame rate: as many frames in flight as the node's window, first send -> last output.",
  ];
}

/** Runs one case; failures are recorded in the results, with the stack's last log lines printed. */
async function measureCase(
  options: LiveOptions,
  profile: LiveProfile,
  liveCase: LiveCase,
  frames: Buffer[],
  agent: http.Agent,
): Promise<{ latency: LiveLatencyResult; throughput: LiveThroughputResult | null }> {
  const name = `${liveCase.codec} ${liveCase.resolution.label}`;
  const { warmupFrames: warmup, throughputFrames, inFlight } = profile;
  const latencyFrames = liveCase.latencyFrames ?? profile.latencyFrames;
  const latency: LiveLatencyResult = {
    name,
    codec: liveCase.codec,
    resolution: liveCase.resolution.label,
    frames: latencyFrames,
  };
  const throughput: LiveThroughputResult | null = liveCase.throughput
    ? {
        name,
        codec: liveCase.codec,
        resolution: liveCase.resolution.label,
        frames: throughputFrames,
        in_flight: inFlight,
      }
    : null;
  let stage = 'create stream';
  let stream: LiveStream | null = null;
  let session: LiveVideoSession | null = null;
  let direct: SessionStream | null = null;
  let relay: SessionStream | null = null;
  let submitted = 0;
  try {
    stream = await LiveStream.open(options.stack.apiUrl, agent, liveCase);
    const { view } = stream;
    const threads = threadsPerJob(options.concurrency);
    latency.settings = {
      quality: view.quality,
      speed: view.speed,
      fps: view.fps,
      keyframeInterval: view.keyframeInterval,
      threads,
    };

    stage = 'transport floor';
    latency.transport_ms = await transportFloor(frames, latencyFrames);

    stage = 'open the sessions';
    const { width, height } = liveCase.resolution;
    session = await createEncoder(liveCase.codec, undefined, { threads }).startLive(
      { width, height, format: FRAME_FORMAT },
      { quality: view.quality, speed: view.speed, fps: view.fps },
      view.keyframeInterval,
    );
    latency.implementation = session.implementation;
    direct = await SessionStream.open(options.stack.apiUrl, liveCase, false);
    relay = await SessionStream.open(options.stack.apiUrl, liveCase, true);

    stage = 'warm-up';
    await rawLatency(session, frames, 0, warmup);
    for (const sessionStream of [direct, relay]) {
      const warm = await sessionLatency(sessionStream, frames, 0, warmup);
      if (warm.keyframes < 1) throw new Error('the first output of a session is not a keyframe');
    }
    const warm = await serviceLatency(stream, frames, 0, warmup);
    submitted += warmup;
    if (warm.keyframes < 1) throw new Error('the first output of the stream is not a keyframe');

    // Frame by frame, each side in turn on the same frame: a load swing of this shared machine hits
    // every side alike, and `added` is taken frame by frame (side - raw of the same frame).
    stage = 'latency';
    const raw: number[] = [];
    const directMs: number[] = [];
    const relayMs: number[] = [];
    const service = {
      total: [] as number[],
      accepted: [] as number[],
      keyframes: 0,
      sent: [] as ServiceSent[],
    };
    for (let index = warmup; index < warmup + latencyFrames; index++) {
      raw.push(...(await rawLatency(session, frames, index, 1)));
      directMs.push(...(await sessionLatency(direct, frames, index, 1)).total);
      relayMs.push(...(await sessionLatency(relay, frames, index, 1)).total);
      const posted = await serviceLatency(stream, frames, index, 1);
      service.total.push(...posted.total);
      service.accepted.push(...posted.accepted);
      service.sent.push(...posted.sent);
      service.keyframes += posted.keyframes;
    }
    submitted += latencyFrames;
    latency.raw_ms = percentiles(raw);
    latency.direct_ms = percentiles(directMs);
    latency.relay_ms = percentiles(relayMs);
    latency.service_ms = percentiles(service.total);
    latency.accepted_ms = percentiles(service.accepted);
    latency.keyframes = service.keyframes;
    latency.direct_added_ms = added(directMs, raw);
    latency.relay_added_ms = added(relayMs, raw);
    latency.added_ms = added(service.total, raw);
    latency.stages_p50_ms = await serviceStages(stream, service.sent);
    console.log(
      `  ${`${name} live`.padEnd(16)} per frame: raw p50 ${fixed(latency.raw_ms.p50)} p99 ${fixed(latency.raw_ms.p99)} ms` +
        `   added: direct ${fixed(latency.direct_added_ms.p50)} / ${fixed(latency.direct_added_ms.p99)}` +
        `   relay ${fixed(latency.relay_added_ms.p50)} / ${fixed(latency.relay_added_ms.p99)}` +
        `   POST ${fixed(latency.added_ms.p50)} / ${fixed(latency.added_ms.p99)} ms (p50 / p99, load ${loadAverage()[0]})`,
    );

    let rawFps: number | null = null;
    if (throughput) {
      stage = 'raw throughput';
      rawFps = await rawBackToBack(session, frames, warmup + latencyFrames, throughputFrames);
    }
    await session.close();
    session = null;
    if (throughput && rawFps !== null) {
      stage = 'session throughput';
      const fps = await sessionThroughput(direct, frames, warmup + latencyFrames, throughputFrames);
      Object.assign(throughput, {
        ffmpeg_fps: rawFps,
        session_fps: fps,
        session_ratio: fps / rawFps,
        window: direct.session.window,
      });
      console.log(
        `  ${`${name} live`.padEnd(16)} one stream over its session: ffmpeg direct ${fixed(rawFps)} fps   session ` +
          `${fixed(fps)} fps   ratio ${(fps / rawFps).toFixed(2)} (window ${direct.session.window}, ` +
          `${direct.session.suspicions} frame timeout(s), ${direct.session.failovers} failover(s), load ${loadAverage()[0]})`,
      );
    }
    stage = 'end of the sessions';
    await direct.end();
    direct = null;
    await relay.end();
    relay = null;

    if (throughput && rawFps !== null) {
      stage = 'service throughput';
      const serviceFps = await serviceThroughput(
        stream,
        frames,
        warmup + latencyFrames,
        throughputFrames,
        inFlight,
      );
      submitted += throughputFrames;
      Object.assign(throughput, {
        ffmpeg_fps: rawFps,
        service_fps: serviceFps,
        ratio: serviceFps / rawFps,
        raw_one_at_a_time_fps: 1000 / latency.raw_ms.mean,
      });
      console.log(
        `  ${`${name} live`.padEnd(16)} one stream: ffmpeg direct ${fixed(rawFps)} fps   service ${fixed(serviceFps)} fps` +
          `   ratio ${(serviceFps / rawFps).toFixed(2)} (${inFlight} in flight, load ${loadAverage()[0]})`,
      );
    }

    stage = 'end of stream';
    await stream.end(submitted);
    stream = null;
  } catch (error) {
    const message = `${stage}: ${(error as Error).message.split('\n')[0]}`;
    console.error(`  ${name} live: FAILED: ${message}`);
    for (const process of ['api', options.workerName]) {
      for (const line of options.stack.logsOf(process).slice(-5))
        console.error(`    [${process}] ${line.slice(0, 300)}`);
    }
    if (latency.added_ms === undefined) latency.failed = message;
    else latency.problem = message;
    if (throughput && throughput.service_fps === undefined) throughput.failed = message;
  } finally {
    stream?.close();
    direct?.abort();
    relay?.abort();
    await session?.close().catch(() => undefined);
  }
  return { latency, throughput };
}

function fixed(value: number): string {
  return value.toFixed(1);
}

/** The live section: every case of the profile, one after the other, against the running stack. */
export async function runLiveBench(options: LiveOptions): Promise<LiveReport> {
  const profile = liveProfile(options.quick);
  const started = performance.now();
  const loadStart = loadAverage();
  const frames = new Map<string, Buffer[]>();
  for (const liveCase of profile.cases) {
    const { label } = liveCase.resolution;
    if (!frames.has(label)) frames.set(label, liveFrames(liveCase.resolution, profile.distinctFrames));
  }
  console.log(
    `bench: live mode (${profile.name}): ${profile.warmupFrames} warm-up + up to ${profile.latencyFrames} frames one at a ` +
      `time per side, ${profile.throughputFrames} frames for the stream's frame rate`,
  );
  const agent = new http.Agent({ keepAlive: true });
  const latency: LiveLatencyResult[] = [];
  const throughput: LiveThroughputResult[] = [];
  try {
    for (const liveCase of profile.cases) {
      const result = await measureCase(
        options,
        profile,
        liveCase,
        frames.get(liveCase.resolution.label)!,
        agent,
      );
      latency.push(result.latency);
      if (result.throughput) throughput.push(result.throughput);
    }
  } finally {
    agent.destroy();
  }
  console.log(`bench: failover, ${profile.failoverTrials} kill -9 trials on a stack of 2 nodes`);
  const failover = await measureFailover(options, profile.failoverTrials).catch(
    (error: unknown): LiveFailoverResult => ({
      trials: profile.failoverTrials,
      ms: [],
      under_1s: 0,
      failures: [(error as Error).message.split('\n')[0]],
      setup: 'failed to start',
    }),
  );
  return {
    profile: profile.name,
    duration_s: (performance.now() - started) / 1000,
    node_concurrency: options.concurrency,
    load_avg_start: loadStart,
    load_avg_end: loadAverage(),
    method: liveMethod(profile.inFlight),
    latency,
    throughput,
    failover,
  };
}

/** Cases that failed, for the exit status. */
export function liveFailures(report: LiveReport): number {
  return (
    [...report.latency, ...report.throughput].filter(
      (result) => result.failed !== undefined || ('problem' in result && result.problem !== undefined),
    ).length + (report.failover?.failures.length ?? 0)
  );
}
