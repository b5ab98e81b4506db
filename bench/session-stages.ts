import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compressSync } from 'lz4-napi';
import WebSocket, { WebSocketServer } from 'ws';
import { EmbeddedRedis, KeySpace, StreamStore, createRedisConnection, waitUntilReady } from '#cluster';
import { createEncoder, rgbaToPixelFormat, syntheticRgba } from '#codecs';
import type { StreamParams } from '#contracts';
import { decodeFrame } from '#worker/session/session-frames.js';

/**
 * Where one live-session frame's time goes on the node, stage by stage, with the node's own pieces:
 * the WebSocket read of a frame (ws, with bufferutil when installed: WS_NO_BUFFER_UTIL=1 to compare),
 * the LZ4 decode of a frame sent compressed, the encode (ffmpeg stdin write, encoding, packet parse:
 * LiveVideoSession, i.e. what "ffmpeg direct" costs), the log append (the fenced commit script with the
 * output's bytes, one round trip to a local redis-server) and the WebSocket write of the output.
 * One frame in flight; medians and 99th percentiles over `--frames` frames.
 *
 *   node dist/bench/session-stages.js [--frames 120] [--codec h264|vp8]
 */

interface Sizes {
  width: number;
  height: number;
}

function arg(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function row(stage: string, values: number[]): string {
  return `  ${stage.padEnd(34)} p50 ${percentile(values, 0.5).toFixed(2).padStart(7)} ms   p99 ${percentile(values, 0.99).toFixed(2).padStart(7)} ms`;
}

async function run({ width, height }: Sizes, codec: 'h264' | 'vp8', count: number, redisUrl: string) {
  const frames = Array.from({ length: 8 }, (_, index) =>
    rgbaToPixelFormat(syntheticRgba(width, height, index, false), 'bgra'),
  );
  const compressed = frames.map((frame) => compressSync(frame));

  // The socket: a client sends a frame, the server's 'message' fires with it (read + unmask).
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 64 * 1024 * 1024 });
  await new Promise((resolve) => wss.once('listening', resolve));
  const serverSide = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
  await new Promise((resolve) => client.once('open', resolve));
  const server = await serverSide;

  const encoder = createEncoder(codec, undefined, {});
  if (encoder.kind !== 'video') throw new Error(`${codec} is not a video codec`);
  const session = await encoder.startLive(
    { width, height, format: 'bgra' },
    { quality: 75, speed: 50, fps: 30 },
    100_000,
  );

  const redis = createRedisConnection({ url: redisUrl, role: 'producer', name: 'bench:session' });
  await waitUntilReady(redis, 10_000);
  const keys = new KeySpace('bench');
  const store = new StreamStore(redis, keys, 600);
  const streamId = `s${String(width).padStart(16, 'B')}`;
  const params = { codec, mode: 'live', pool: 'cpu', width, height, format: 'bgra' } as StreamParams;
  await store.create(streamId, params, 'node', Date.now());

  const read: number[] = [];
  const lz4: number[] = [];
  const encode: number[] = [];
  const append: number[] = [];
  const write: number[] = [];
  for (let index = 0; index < count; index++) {
    const frame = frames[index % frames.length];
    let started = performance.now();
    const received = new Promise<Buffer>((resolve) =>
      server.once('message', (data: Buffer) => resolve(data)),
    );
    client.send(frame);
    const message = await received;
    read.push(performance.now() - started);

    started = performance.now();
    decodeFrame(compressed[index % frames.length], frame.length, 'lz4');
    lz4.push(performance.now() - started);

    started = performance.now();
    const [packet] = await session.encode([decodeFrame(message, frame.length, 'none')], 1);
    encode.push(performance.now() - started);

    started = performance.now();
    await store.commitSessionFrame(streamId, {
      node: 'node',
      epoch: 0,
      nodeName: 'bench',
      frame: index,
      keyframe: packet.keyframe,
      contentType: session.contentType,
      data: packet.data,
    });
    append.push(performance.now() - started);

    started = performance.now();
    const delivered = new Promise<void>((resolve) => {
      const onMessage = (_data: Buffer, isBinary: boolean) => {
        if (!isBinary) return;
        client.off('message', onMessage);
        resolve();
      };
      client.on('message', onMessage);
    });
    server.send(JSON.stringify({ type: 'output', frame: index, bytes: packet.data.length }));
    server.send(packet.data, { binary: true });
    await delivered;
    write.push(performance.now() - started);
  }
  console.log(
    `${codec} ${width}x${height} (${frames[0].length} bytes a frame), ${count} frames, one in flight:`,
  );
  console.log(row('socket read (ws, bufferutil ' + (process.env.WS_NO_BUFFER_UTIL ? 'off)' : 'on)'), read));
  console.log(row('lz4 block decode (lz4-napi)', lz4));
  console.log(row('encode: stdin, ffmpeg, packet parse', encode));
  console.log(row('log append (fenced commit + bytes)', append));
  console.log(row('socket write (header + packet)', write));
  await session.close();
  client.close();
  wss.close();
  redis.disconnect();
}

async function main(): Promise<void> {
  const count = Number(arg('frames', '120'));
  const codec = arg('codec', 'h264') as 'h264' | 'vp8';
  const dir = mkdtempSync(join(tmpdir(), 'session-stages-'));
  const redis = new EmbeddedRedis({ port: 0, dataDir: dir });
  const url = await redis.start();
  try {
    for (const sizes of [
      { width: 1280, height: 720 },
      { width: 1920, height: 1080 },
    ])
      await run(sizes, codec, count, url);
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
