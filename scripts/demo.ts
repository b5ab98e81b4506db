import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Codec } from '#contracts';
import { syntheticFrame } from '#codecs';
import { EncoderApiClient, extensionFor, progressBar, type JobEventWithId } from '#client';
import { ServiceStack, repoRoot } from './lib/stack.js';
import { firstKeyOf } from '#api/auth/key-ring.js';

interface DemoCase {
  codec: Codec;
  frames: number;
}

const CASES: DemoCase[] = [
  { codec: 'jpeg', frames: 3 },
  { codec: 'webp', frames: 2 },
  { codec: 'png', frames: 1 },
  { codec: 'h264', frames: 30 },
  { codec: 'vp9', frames: 15 },
];

/** Sends desktop-like frames through the service, follows the events, and writes the outputs to `outDir`. */
export async function runDemo(
  client: EncoderApiClient,
  outDir: string,
  size = { width: 640, height: 360 },
): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const { codec, frames } of CASES) {
    const raw = Buffer.concat(
      Array.from({ length: frames }, (_, frameIndex) =>
        syntheticFrame({ ...size, format: 'bgra', frameIndex }),
      ),
    );
    const started = Date.now();
    const accepted = await client.submitRaw(
      { codec, ...size, format: 'bgra', frames, quality: 80, speed: 80 },
      raw,
    );
    process.stdout.write(`${codec.padEnd(5)} job ${accepted.id} queued on ${accepted.pool} `);
    const job = await client.waitFor(accepted.id, (event: JobEventWithId) => {
      if (event.type === 'progress')
        process.stdout.write(
          `\r${codec.padEnd(5)} job ${accepted.id} ${progressBar(event.framesDone, frames)}`,
        );
    });
    if (job.status !== 'completed') {
      console.log(`\n${codec}: job ${job.id} ${job.status}: ${job.error}`);
      continue;
    }
    for (const output of job.outputs) {
      const { data, contentType } = await client.output(job.id, output.index);
      const file = join(outDir, `${codec}-${output.index}.${extensionFor(contentType)}`);
      writeFileSync(file, data);
      written.push(file);
    }
    console.log(
      `\r${codec.padEnd(5)} job ${job.id} ${progressBar(frames, frames)} ${job.outputs.length} output(s), ` +
        `${job.outputs.reduce((sum, output) => sum + output.bytes, 0)} bytes, ${Date.now() - started} ms, node ${job.node}`,
    );
  }
  return written;
}

/**
 * A live H.264 stream through the client CLI, as a user would run it: frames sent at 30 fps over the
 * stream's session (one WebSocket straight to the node; the CLI's default for live streams), each
 * frame's packet appended to `outDir/stream.h264` as it comes back.
 */
export function runLiveDemo(apiUrl: string, outDir: string, apiKey?: string): Promise<void> {
  const args = [
    join(repoRoot(), 'dist/libs/client/src/cli.js'),
    'stream',
    '--api',
    apiUrl,
    '--codec',
    'h264',
    '--mode',
    'live',
    '--width',
    '640',
    '--height',
    '360',
    '--format',
    'bgra',
    '--synthetic',
    '90',
    '--realtime',
    '--out',
    outDir,
  ];
  // The key goes through the environment (the CLI reads API_KEY): an argument would be printed here and
  // shown to every user of the machine by `ps`.
  console.log(`$ ${apiKey ? 'API_KEY=*** ' : ''}npm run client -- ${args.slice(1).join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      stdio: 'inherit',
      env: apiKey ? { ...process.env, API_KEY: apiKey } : process.env,
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`the client exited with ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const apiUrl = process.env.API_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`;
  const apiKey = process.env.API_KEY || firstKeyOf(process.env.API_KEYS);
  let client = new EncoderApiClient(apiUrl, apiKey);
  let stack: ServiceStack | null = null;
  if (!(await client.ready())) {
    console.log(`no service at ${apiUrl}: starting an embedded one (redis-server, API, one encoder node)`);
    stack = await ServiceStack.start({ workers: [{ name: 'demo-cpu', concurrency: 2 }] });
    client = stack.client;
  }
  try {
    const files = await runDemo(client, join(process.cwd(), 'out'));
    console.log(`wrote ${files.length} files to ./out`);
    await runLiveDemo(client.baseUrl, join(process.cwd(), 'out', 'live'), stack?.apiKey ?? apiKey);
  } finally {
    await stack?.stop();
  }
}

if (process.argv[1]?.endsWith('demo.js')) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
