import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '#scripts/lib/stack.js';

/** A built script run as its own process, as an operator starts it, with its output kept. */
export class ScriptProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private text = '';
  private exitCode: number | null | undefined;

  /** `script` is relative to dist/ (e.g. `apps/api/src/main.js`); `env` replaces the inherited one's keys. */
  constructor(script: string, args: string[], env: Record<string, string | undefined>) {
    const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
    for (const [name, value] of Object.entries(env)) if (value === undefined) delete merged[name];
    this.child = spawn(process.execPath, [join(repoRoot(), 'dist', script), ...args], {
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (data: Buffer) => (this.text += data.toString());
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  /** stdout and stderr so far, interleaved as they arrived. */
  get output(): string {
    return this.text;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolves once the output matches; rejects (with the output) if the process exits first. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.text)) {
      if (!this.running)
        throw new Error(`process exited (${this.exitCode}) before printing ${pattern}:\n${this.text}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.text}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The exit code, or 'running' if the process is still up after `timeoutMs`. */
  async exitWithin(timeoutMs: number): Promise<number | null | 'running'> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'running'>(
      (resolve) => (timer = setTimeout(() => resolve('running'), timeoutMs)),
    );
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Signals the process (SIGKILL after `graceMs`) and resolves with its exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
