import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EmbeddedRedis, freePort, generateClusterSecret } from '#cluster';
import { EncoderApiClient } from '#client';
import { firstKeyOf } from '#api/auth/key-ring.js';

/** The repository root (where package.json is), from the source tree or from dist/. */
export function repoRoot(from = import.meta.dirname): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('dist')) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found');
    dir = parent;
  }
  return dir;
}

export interface WorkerSpec {
  name: string;
  pool?: 'cpu' | 'gpu';
  concurrency?: number;
  timeoutSeconds?: number;
  /** The node's data port (`--bind`): default 127.0.0.1:0 (any free port on loopback); null for none. */
  bind?: string | null;
  args?: string[];
}

export interface StackOptions {
  /** Use this Redis instead of starting one. */
  redisUrl?: string;
  dataDir?: string;
  redisPort?: number;
  apiPort?: number;
  apiHost?: string;
  workers?: WorkerSpec[];
  env?: Record<string, string>;
  /** Child output to this process's stdout/stderr, prefixed; otherwise kept (last lines) for errors. */
  verbose?: boolean;
}

interface ManagedProcess {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

/**
 * Starts the service as separate processes, as an operator would: redis-server (unless a URL is given),
 * the API, and encoder nodes. Used by `npm start`, the demo, the integration tests and the bench.
 */
export class ServiceStack {
  redis: EmbeddedRedis | null = null;
  redisUrl = '';
  apiUrl = '';
  private api: ManagedProcess | null = null;
  private readonly workers = new Map<string, ManagedProcess>();
  /** More API processes on the same Redis (clients fail over between them). */
  private readonly replicas = new Map<string, ManagedProcess>();
  private readonly root = repoRoot();
  client!: EncoderApiClient;

  /**
   * The session-token secret every child shares (the API signs, nodes check): the environment's
   * CLUSTER_SECRETS, or one made for this stack.
   */
  readonly clusterSecrets: string;

  constructor(private readonly options: StackOptions = {}) {
    this.clusterSecrets =
      options.env?.CLUSTER_SECRETS || process.env.CLUSTER_SECRETS || generateClusterSecret();
  }

  static async start(options: StackOptions = {}): Promise<ServiceStack> {
    const stack = new ServiceStack(options);
    stack.checkPlainHttp();
    try {
      await stack.startRedis();
      await stack.startApi();
      await Promise.all((options.workers ?? []).map((spec) => stack.startWorker(spec)));
    } catch (error) {
      await stack.stop();
      throw error;
    }
    return stack;
  }

  /** Its own checks (and the demo) speak plain HTTP to the API it starts: refuse rather than drop TLS. */
  private checkPlainHttp(): void {
    const env = this.env();
    if (env.TLS_CERT_FILE || env.TLS_KEY_FILE) {
      throw new Error(
        'TLS_CERT_FILE/TLS_KEY_FILE are for `npm run api`: the all-in-one (npm start, the demo) serves plain HTTP on loopback; for HTTPS run the API with them, or put a TLS-terminating reverse proxy in front (README, Security)',
      );
    }
  }

  private async startRedis(): Promise<void> {
    if (this.options.redisUrl) {
      this.redisUrl = this.options.redisUrl;
      return;
    }
    this.redis = new EmbeddedRedis({
      port: this.options.redisPort ?? 0,
      dataDir: resolve(this.options.dataDir ?? join(this.root, '.data', 'redis')),
    });
    this.redisUrl = await this.redis.start();
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      REDIS_URL: this.redisUrl,
      ...this.options.env,
      CLUSTER_SECRETS: this.clusterSecrets,
    };
  }

  /**
   * A key the API accepts: the first of the API_KEYS it runs with, whether they came from the options
   * or from this process's environment (`API_KEYS=... npm start`). The stack's own readiness and
   * registration checks are clients like any other.
   */
  get apiKey(): string | undefined {
    return firstKeyOf(this.env().API_KEYS);
  }

  private spawnNode(label: string, script: string, args: string[], env: NodeJS.ProcessEnv): ManagedProcess {
    const child = spawn(process.execPath, [join(this.root, 'dist', script), ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const collect = (data: Buffer) => {
      for (const line of data.toString().split('\n')) {
        if (!line) continue;
        output.push(line);
        if (output.length > 200) output.shift();
        if (this.options.verbose) console.log(`[${label}] ${line}`);
      }
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const exited = new Promise<number | null>((resolveExit) =>
      child.once('exit', (code) => resolveExit(code)),
    );
    return { child, output, exited };
  }

  async startApi(): Promise<void> {
    const port = this.options.apiPort ?? (await freePort());
    const host = this.options.apiHost ?? '127.0.0.1';
    this.api = this.spawnNode('api', 'apps/api/src/main.js', [], {
      ...this.env(),
      PORT: String(port),
      HOST: host,
    });
    this.apiUrl = `http://${host}:${port}`;
    this.client = new EncoderApiClient(this.apiUrl, this.apiKey);
    await this.until(() => this.client.ready(), 20_000, 'the API to become ready', this.api);
  }

  /** Another API process on the same Redis; resolves with its URL once it is ready. */
  async startApiReplica(): Promise<string> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const replica = this.spawnNode(`api:${port}`, 'apps/api/src/main.js', [], {
      ...this.env(),
      PORT: String(port),
      HOST: '127.0.0.1',
    });
    this.replicas.set(url, replica);
    const client = new EncoderApiClient(url, this.apiKey);
    await this.until(() => client.ready(), 20_000, `the API replica at ${url} to become ready`, replica);
    return url;
  }

  /** Signals an API replica (or, with the main API's URL, the main API); resolves once it exited. */
  async signalApi(url: string, signal: NodeJS.Signals): Promise<number | null> {
    const api = url === this.apiUrl ? this.api : this.replicas.get(url);
    if (!api) throw new Error(`no API at ${url}`);
    api.child.kill(signal);
    const code = await api.exited;
    this.replicas.delete(url);
    return code;
  }

  async startWorker(spec: WorkerSpec): Promise<void> {
    const args = [
      '--name',
      spec.name,
      '--pool',
      spec.pool ?? 'cpu',
      '--concurrency',
      String(spec.concurrency ?? 2),
      '--timeout',
      String(spec.timeoutSeconds ?? 10),
      ...(spec.bind === null || spec.args?.includes('--bind') ? [] : ['--bind', spec.bind ?? '127.0.0.1:0']),
      ...(spec.args ?? []),
    ];
    const worker = this.spawnNode(spec.name, 'apps/worker/src/main.js', args, this.env());
    this.workers.set(spec.name, worker);
    await this.until(
      async () => (await this.client.nodes().catch(() => [])).some((node) => node.name === spec.name),
      30_000,
      `node ${spec.name} to register`,
      worker,
    );
  }

  /** Sends a signal to a node; resolves with its exit code once it is gone. */
  async signalWorker(name: string, signal: NodeJS.Signals): Promise<number | null> {
    const worker = this.workers.get(name);
    if (!worker) throw new Error(`no worker ${name}`);
    worker.child.kill(signal);
    const code = await worker.exited;
    this.workers.delete(name);
    return code;
  }

  /** SIGSTOP/SIGCONT: a node that hangs (its record and locks stay until they expire). */
  freezeWorker(name: string, frozen: boolean): void {
    const worker = this.workers.get(name);
    if (!worker) throw new Error(`no worker ${name}`);
    worker.child.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /** A node's process id (to find its ffmpeg children in /proc). */
  workerPid(name: string): number | undefined {
    return this.workers.get(name)?.child.pid;
  }

  /** The API process's id (to read its memory from /proc). */
  get apiPid(): number | undefined {
    return this.api?.child.pid;
  }

  logsOf(name: string): string[] {
    return name === 'api' ? (this.api?.output ?? []) : (this.workers.get(name)?.output ?? []);
  }

  private async until(
    check: () => Promise<boolean>,
    timeoutMs: number,
    what: string,
    process?: ManagedProcess,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    void process?.exited.then((code) => (exitCode = code));
    while (Date.now() < deadline) {
      if (exitCode !== undefined)
        throw new Error(`waiting for ${what}: process exited (${exitCode})\n${process?.output.join('\n')}`);
      if (await check()) return;
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
    throw new Error(`timed out waiting for ${what}\n${process?.output.slice(-30).join('\n') ?? ''}`);
  }

  /** Drains the nodes, stops the API, then Redis (which flushes its append-only file). */
  async stop(graceMs = 15_000): Promise<void> {
    await Promise.all(
      [...this.workers.entries()].map(async ([name, worker]) => {
        // A node waiting on a Redis that a test left down would otherwise hold the whole teardown.
        const timer = setTimeout(() => worker.child.kill('SIGKILL'), graceMs);
        await this.signalWorker(name, 'SIGTERM');
        clearTimeout(timer);
      }),
    );
    for (const api of [this.api, ...this.replicas.values()]) {
      if (!api || api.child.exitCode !== null || api.child.signalCode !== null) continue;
      api.child.kill('SIGTERM');
      const timer = setTimeout(() => api.child.kill('SIGKILL'), 5000);
      await api.exited;
      clearTimeout(timer);
    }
    await this.redis?.stop();
  }
}
