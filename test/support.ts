import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rgbaToPixelFormat, syntheticRgba } from '#codecs';
import type { RawJobRequest } from '#client';
import { EmbeddedRedis } from '#cluster';
import { Redis } from 'ioredis';
import { ServiceStack, type StackOptions } from '#scripts/lib/stack.js';

const execFileAsync = promisify(execFile);

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A stack on a new data folder, and a client of its Redis for what the test reads there itself. */
export interface StackWithRedis {
  stack: ServiceStack;
  redis: Redis;
  data: ReturnType<typeof tempDir>;
}

export async function startStackWithRedis(
  dataPrefix: string,
  options: Omit<StackOptions, 'dataDir'>,
): Promise<StackWithRedis> {
  const data = tempDir(dataPrefix);
  try {
    const stack = await ServiceStack.start({ dataDir: data.path, ...options });
    return { stack, redis: new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 }), data };
  } catch (error) {
    data.remove();
    throw error;
  }
}

/** Stops what startStackWithRedis started: the parts given (a failed start leaves them undefined). */
export async function stopStackWithRedis({ stack, redis, data }: Partial<StackWithRedis>): Promise<void> {
  redis?.disconnect();
  await stack?.stop();
  data?.remove();
}

/** A self-signed certificate and key for 127.0.0.1, valid a day, made as an operator would for a test box. */
export async function selfSignedCertificate(keyFile: string, certFile: string): Promise<void> {
  await execFileAsync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
}

/** A raw bgra batch of desktop-like frames and the request that declares it. */
export function bgraBatch(
  codec: RawJobRequest['codec'],
  width: number,
  height: number,
  frames: number,
  extra: Partial<RawJobRequest> = {},
): { request: RawJobRequest; body: Buffer } {
  const body = Buffer.concat(
    Array.from({ length: frames }, (_, index) =>
      rgbaToPixelFormat(syntheticRgba(width, height, index, false), 'bgra'),
    ),
  );
  return { request: { codec, width, height, format: 'bgra', frames, ...extra }, body };
}

export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A local 3-master Redis Cluster (no replicas), made the way an operator would with redis-cli. */
export class LocalRedisCluster {
  readonly nodes: EmbeddedRedis[] = [];

  constructor(private readonly dataDir: string) {}

  get url(): string {
    return `redis-cluster://${this.nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`;
  }

  async start(masters = 3): Promise<void> {
    for (let index = 0; index < masters; index++) {
      const node = new EmbeddedRedis({
        port: 0,
        dataDir: join(this.dataDir, `node-${index}`),
        extraArgs: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '5000',
        ],
      });
      await node.start();
      this.nodes.push(node);
    }
    await execFileAsync('redis-cli', [
      '--cluster',
      'create',
      ...this.nodes.map((node) => `127.0.0.1:${node.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    await waitUntil(
      async () => {
        const states = await Promise.all(
          this.nodes.map(
            async (node) =>
              (await execFileAsync('redis-cli', ['-p', String(node.port), 'cluster', 'info'])).stdout,
          ),
        );
        return states.every((state) => state.includes('cluster_state:ok'));
      },
      20_000,
      'the cluster to be ok',
    );
  }

  /** Keys held by each master. */
  async keysPerNode(): Promise<number[]> {
    return Promise.all(
      this.nodes.map(async (node) =>
        Number((await execFileAsync('redis-cli', ['-p', String(node.port), 'dbsize'])).stdout.trim()),
      ),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}

/** Child processes of `pid` named `name` (from /proc: no `ps` needed). */
export function childrenNamed(pid: number, name: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && comm === name) found.push(Number(entry));
    } catch {
      // The process ended while being read.
    }
  }
  return found;
}
