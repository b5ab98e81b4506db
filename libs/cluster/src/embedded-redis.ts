import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export interface EmbeddedRedisOptions {
  /** 0 picks a free loopback port. */
  port: number;
  dataDir: string;
  binary?: string;
  /** AOF on by default: acknowledged jobs survive a restart. */
  appendOnly?: boolean;
  extraArgs?: string[];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** The settings BullMQ needs from any Redis it runs on (PITFALLS.md). */
export function redisServerArgs(port: number, dataDir: string, appendOnly: boolean): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--dir',
    dataDir,
    '--appendonly',
    appendOnly ? 'yes' : 'no',
    '--appendfsync',
    'everysec',
    // Frames pass through (written, read once, deleted): with the default 64 MB the AOF is rewritten
    // (fork + dump) every ~8 1080p frames; this keeps rewrites rare at the cost of AOF disk space.
    '--auto-aof-rewrite-min-size',
    '512mb',
    '--save',
    '',
    '--maxmemory-policy',
    'noeviction',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
}

/** A private redis-server child process: started on demand, stopped with its owner. */
export class EmbeddedRedis {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  port = 0;

  constructor(private readonly options: EmbeddedRedisOptions) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(timeoutMs = 10_000): Promise<string> {
    this.port = this.options.port || this.port || (await freePort());
    mkdirSync(this.options.dataDir, { recursive: true });
    const args = [
      ...redisServerArgs(this.port, this.options.dataDir, this.options.appendOnly ?? true),
      ...(this.options.extraArgs ?? []),
    ];
    // A process group of its own: Ctrl-C on `npm start` reaches the whole foreground group, and Redis
    // must outlive the node's drain (the owner stops it last).
    const child = spawn(this.options.binary ?? 'redis-server', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    let output = '';
    child.stdout?.on('data', (data: Buffer) => (output = (output + data.toString()).slice(-4000)));
    child.stderr?.on('data', (data: Buffer) => (output = (output + data.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (error) => reject(new Error(`cannot start redis-server: ${error.message}`))),
    );
    const early = this.exited.then(() => {
      throw new Error(`redis-server exited at start: ${output.trim()}`);
    });
    await Promise.race([this.waitForPing(timeoutMs), spawnError, early]);
    return this.url;
  }

  private async waitForPing(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const probe = new Redis(this.port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        // not up yet
      } finally {
        probe.disconnect();
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`redis-server did not answer on port ${this.port} within ${timeoutMs} ms`);
  }

  /** SIGTERM lets redis-server flush its AOF; SIGKILL after the grace period. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    this.child = null;
  }

  /** For fault tests: kill -9, as a crash would. */
  async crash(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }
}
