import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_FRAME_STORE_OPTIONS,
  EmbeddedRedis,
  FrameStore,
  KeySpace,
  createRedisConnection,
  waitUntilReady,
} from '#cluster';
import { encodeLz4BlockRecordSync, lz4BlockPieces, syntheticFrame } from '#codecs';
import { FRAME_FORMAT, RES_1080P } from './cases.js';

/**
 * What Redis's persistence costs per frame (`npm run build && node dist/bench/aof.js [frames]`): the
 * same frames stored, read back and deleted as a job's input is, on a redis-server of its own per
 * setup (no AOF; AOF with fsync every second, the service's default; AOF with fsync left to the
 * kernel), uncompressed and as the SDK's LZ4 blocks. Redis's CPU comes from /proc (its AOF rewrites,
 * forked children, included once reaped).
 */

const SETUPS: { name: string; appendOnly: boolean; args: string[] }[] = [
  { name: 'AOF off', appendOnly: false, args: [] },
  { name: 'AOF, fsync everysec (default)', appendOnly: true, args: [] },
  { name: 'AOF, fsync no (kernel flushes)', appendOnly: true, args: ['--appendfsync', 'no'] },
];

function cpuMsOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index]), 0);
  return ticks * 10;
}

async function* chunksOf(body: Buffer, size = 64 * 1024): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < body.length; offset += size) yield body.subarray(offset, offset + size);
}

async function drain(source: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of source) void chunk;
}

async function measure(setup: (typeof SETUPS)[number], frames: Buffer[], lz4: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'encoder-aof-'));
  const redis = new EmbeddedRedis({
    port: 0,
    dataDir: dir,
    appendOnly: setup.appendOnly,
    extraArgs: setup.args,
  });
  const url = await redis.start();
  const client = createRedisConnection({ url, role: 'worker', name: 'bench-aof' });
  try {
    await waitUntilReady(client, 5000);
    const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
    const keys = new KeySpace('aof');
    const store = new FrameStore(client, keys, DEFAULT_FRAME_STORE_OPTIONS);
    const frameBytes = frames[0].length;
    const records = frames.map((frame) => Buffer.concat(encodeLz4BlockRecordSync(frame)));
    const cpuBefore = cpuMsOf(pid);
    const started = performance.now();
    for (const [index, frame] of frames.entries()) {
      const jobId = `job${index}`;
      if (lz4) {
        await store.writeFrameValues(jobId, lz4BlockPieces(chunksOf(records[index]), frameBytes, 1));
        await drain(store.readFrameValues(jobId, 1));
      } else {
        await store.writeFrames(jobId, chunksOf(frame), frameBytes, 1);
        await drain(store.readFrames(jobId, frameBytes, 1, null));
      }
      await store.deleteFrames(jobId, 1);
    }
    const wallMs = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 1200)); // an fsync second, and any rewrite, land
    const persistence = await client.info('persistence');
    return {
      redisCpuMsPerFrame: (cpuMsOf(pid) - cpuBefore) / frames.length,
      wallMsPerFrame: wallMs / frames.length,
      rewrites: Number(/aof_rewrites:(\d+)/.exec(persistence)?.[1] ?? 0),
    };
  } finally {
    client.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 40);
  const { width, height } = RES_1080P;
  const frames = Array.from({ length: count }, (_, frameIndex) =>
    syntheticFrame({ width, height, format: FRAME_FORMAT, frameIndex }),
  );
  console.log(
    `Redis persistence per 1080p ${FRAME_FORMAT} frame (${count} frames: store, read back, delete)`,
  );
  console.log('setup                             upload    Redis CPU ms/frame  wall ms/frame  AOF rewrites');
  for (const setup of SETUPS) {
    for (const lz4 of [false, true]) {
      const result = await measure(setup, frames, lz4);
      console.log(
        `${setup.name.padEnd(34)}${(lz4 ? 'lz4' : 'raw').padEnd(10)}${result.redisCpuMsPerFrame.toFixed(1).padStart(18)}` +
          `${result.wallMsPerFrame.toFixed(1).padStart(15)}${String(result.rewrites).padStart(14)}`,
      );
    }
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
