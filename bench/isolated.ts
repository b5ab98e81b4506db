import http from 'node:http';
import type { RedisClient } from '#cluster';
import {
  BufferPool,
  DEFAULT_FRAME_STORE_OPTIONS,
  EmbeddedRedis,
  FrameStore,
  KeySpace,
  OutputStore,
  createRedisConnection,
  waitUntilReady,
} from '#cluster';
import { createEncoder, decodeLz4BlockValue, encodeLz4BlockRecordSync } from '#codecs';
import { FRAME_FORMAT, SETTINGS, type Resolution } from './cases.js';
import type { FrameLibrary } from './frames.js';
import { postParts, startSink } from './http.js';
import { median } from './stats.js';

/** One stage measured alone: one frame at a time, nothing else running, median of the repeats. */
export interface IsolatedStage {
  stage: string;
  resolution: string;
  ms: number;
  /** Frame (or output) bytes moved per second by this stage alone. */
  mbPerSecond: number;
  how: string;
}

export interface IsolatedOptions {
  /** The service's Redis (AOF on, as the service runs it); keys go under their own prefix. */
  redisUrl: string;
  library: FrameLibrary;
  resolutions: Resolution[];
  repeats: number;
  /** Data folder for a second, AOF-less redis-server started (and stopped) here for comparison. */
  scratchDir: string;
}

/** Bytes arrive from an HTTP request in chunks of about this size (what FrameStore then writes). */
const HTTP_CHUNK_BYTES = 64 * 1024;
const KEYS = new KeySpace('bench-isolated');

async function* chunksOf(frame: Buffer): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < frame.length; offset += HTTP_CHUNK_BYTES) {
    yield frame.subarray(offset, offset + HTTP_CHUNK_BYTES);
  }
}

async function drain(source: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of source) void chunk;
}

/** Median milliseconds of `repeats` runs of `work` after one unmeasured run; `after` is not timed. */
async function timeMedian(
  repeats: number,
  work: (run: number) => Promise<unknown>,
  after?: (run: number) => Promise<unknown>,
) {
  const times: number[] = [];
  for (let run = 0; run <= repeats; run++) {
    const started = performance.now();
    await work(run);
    if (run > 0) times.push(performance.now() - started);
    await after?.(run);
  }
  return median(times);
}

/**
 * Each stage of the service path on its own, with the real code (FrameStore, OutputStore, the codecs,
 * node:http and fetch) against real servers: what a stage costs when nothing else
 * competes for the CPU, to set beside the in-service stage times, where everything does.
 */
export async function measureIsolatedStages(options: IsolatedOptions): Promise<IsolatedStage[]> {
  const { library, repeats } = options;
  const results: IsolatedStage[] = [];
  const sink = await startSink();
  const scratch = new EmbeddedRedis({ port: 0, dataDir: options.scratchDir, appendOnly: false });
  const agent = new http.Agent({ keepAlive: true });
  const connections: RedisClient[] = [];
  const connect = async (url: string, name: string) => {
    const redis = createRedisConnection({ url, role: 'worker', name });
    connections.push(redis);
    await waitUntilReady(redis, 5000);
    return redis;
  };
  try {
    const serviceRedis = await connect(options.redisUrl, 'bench-isolated');
    const scratchRedis = await connect(await scratch.start(), 'bench-isolated-noaof');
    const frames = new FrameStore(serviceRedis, KEYS, DEFAULT_FRAME_STORE_OPTIONS);
    const framesNoAof = new FrameStore(scratchRedis, KEYS, DEFAULT_FRAME_STORE_OPTIONS);
    const outputs = new OutputStore(serviceRedis, KEYS, 60);
    const pool = new BufferPool(64 * 1024 * 1024);
    const jpeg = createEncoder('jpeg');

    for (const resolution of options.resolutions) {
      const frame = library.frames(resolution)[0];
      const { width, height } = resolution;
      const layout = { width, height, format: FRAME_FORMAT };
      const jobId = (run: number) => `stage-${resolution.label}-${run}`;
      const add = (stage: string, ms: number, bytes: number, how: string) =>
        results.push({
          stage,
          resolution: resolution.label,
          ms,
          mbPerSecond: bytes / 1e6 / (ms / 1000),
          how,
        });

      add(
        'upload (node:http)',
        await timeMedian(repeats, () => postParts(`${sink.url}/v1/jobs`, [frame], {}, agent)),
        frame.length,
        'POST of one frame to an in-process HTTP sink, body written as is (the bench client)',
      );
      add(
        'upload (fetch)',
        await timeMedian(repeats, async () => {
          const query = `codec=jpeg&width=${width}&height=${height}&format=${FRAME_FORMAT}&frames=1`;
          const response = await fetch(`${sink.url}/v1/jobs?${query}`, {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream' },
            body: frame,
          });
          await response.arrayBuffer();
        }),
        frame.length,
        'the same through fetch (undici copies the body before sending it)',
      );
      for (const [stage, store, how] of [
        ['store (AOF on)', frames, "FrameStore.writeFrames from 64 KiB chunks into the service's Redis"],
        ['store (AOF off)', framesNoAof, 'the same into a redis-server without the append-only file'],
      ] as const) {
        add(
          stage,
          await timeMedian(
            repeats,
            (run) => store.writeFrames(jobId(run), chunksOf(frame), frame.length, 1),
            (run) => store.deleteFrames(jobId(run), 1),
          ),
          frame.length,
          how,
        );
      }
      await frames.writeFrames(jobId(0), chunksOf(frame), frame.length, 1);
      add(
        'fetch',
        await timeMedian(repeats, () => drain(frames.readFrames(jobId(0), frame.length, 1, pool))),
        frame.length,
        'FrameStore.readFrames: pipelined GETRANGE pieces into a pooled buffer (as the node)',
      );
      await frames.deleteFrames(jobId(0), 1);
      const [, compressed] = encodeLz4BlockRecordSync(frame);
      add(
        'decompress lz4',
        await timeMedian(repeats, () => decodeLz4BlockValue(compressed, frame.length, 0)),
        frame.length,
        `the node's decoder of an lz4-block frame (${(frame.length / compressed.length).toFixed(1)}:1 on these frames): one lz4-napi call on libuv's pool into the frame's buffer`,
      );
      const encoded = await jpeg.encode(frame, layout, SETTINGS);
      add(
        'encode jpeg',
        await timeMedian(repeats, () => jpeg.encode(frame, layout, SETTINGS)),
        frame.length,
        'sharp, one libvips thread (a node slot on this machine), q80',
      );
      add(
        'store output',
        await timeMedian(repeats, () => outputs.put(jobId(0), 0, encoded)),
        encoded.length,
        `OutputStore.put of the ${Math.round(encoded.length / 1024)} KiB JPEG`,
      );
      add(
        'read output',
        await timeMedian(repeats, () => outputs.get(jobId(0), 0)),
        encoded.length,
        'OutputStore.get of it (what the API does for GET .../outputs/:i)',
      );
      await serviceRedis.unlink(KEYS.output(jobId(0), 0));
    }
  } finally {
    agent.destroy();
    for (const redis of connections) redis.disconnect();
    await scratch.stop();
    await sink.close();
  }
  return results;
}
