import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EncodeAbortedError, EncoderFailedError } from './errors.js';
import { ffmpegArgv, formatCommandLine, type FfmpegArgs } from './ffmpeg-args.js';

/**
 * The one ffmpeg child process wrapper, for batch segments (runFfmpegPipe) and live sessions
 * (LiveVideoSession) alike: spawned with an argument array (no shell), raw frames written to stdin with
 * back-pressure, stdout handed over chunk by chunk, the tail of stderr kept for error messages, the exit
 * awaited, and a kill on abort, on timeout or after a grace period at close.
 */

export interface FfmpegChildOptions {
  binary: string;
  args: FfmpegArgs;
  /** Shown in error messages, e.g. "h264 (libx264)". */
  label: string;
  /** Each stdout chunk, in order, as it arrives. */
  onStdout(chunk: Buffer): void;
}

/** How ffmpeg ended: `error` is null for exit status 0. */
export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error: Error | null;
}

export interface KillGuard {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Called once, just before the kill, with why: EncodeAbortedError or EncoderFailedError. */
  onKill(reason: EncodeAbortedError | EncoderFailedError): void;
}

const STDERR_TAIL_CHARS = 2000;

export class FfmpegChild {
  readonly commandLine: string;
  /** Resolves once ffmpeg has exited and stdout is read to its end (every chunk delivered). */
  readonly exited: Promise<FfmpegExit>;
  private stderr = '';
  private ended = false;
  private markExited!: (exit: FfmpegExit) => void;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly label: string,
    commandLine: string,
  ) {
    this.commandLine = commandLine;
    this.exited = new Promise((resolve) => (this.markExited = resolve));
  }

  /**
   * Spawns ffmpeg. Resolves once the process runs; rejects with EncoderFailedError (command line
   * included) when it cannot be started. Encoder errors (bad options, no device) show as its exit.
   */
  static spawn(options: FfmpegChildOptions): Promise<FfmpegChild> {
    const argv = ffmpegArgv(options.args);
    const commandLine = formatCommandLine(options.binary, argv);
    return new Promise((resolve, reject) => {
      const proc = spawn(options.binary, argv, { stdio: 'pipe', windowsHide: true });
      const child = new FfmpegChild(proc, options.label, commandLine);
      let started = false;
      proc.stdin.on('error', () => undefined); // EPIPE once ffmpeg died: reported through its exit
      proc.stdout.on('data', (chunk: Buffer) => options.onStdout(chunk));
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', (text: string) => {
        child.stderr = `${child.stderr}${text}`.slice(-STDERR_TAIL_CHARS);
      });
      proc.once('spawn', () => {
        started = true;
        resolve(child);
      });
      proc.on('error', (error) => {
        // Spawn failures only; a failed kill() changes nothing here.
        if (started) return;
        child.onExit({ code: null, signal: null, error });
        reject(child.failure(`could not be started: ${error.message}`, error));
      });
      // 'close' comes after stdout's last data, so every chunk is handed over before the exit.
      proc.once('close', (code, signal) => {
        const error =
          code === 0
            ? null
            : new Error(
                signal ? `ffmpeg was killed with signal ${signal}` : `ffmpeg exited with code ${code}`,
              );
        child.onExit({ code, signal, error });
      });
    });
  }

  /** The process id while ffmpeg runs. */
  get pid(): number | undefined {
    return this.ended ? undefined : this.child.pid;
  }

  get running(): boolean {
    return !this.ended;
  }

  /** The last 2000 characters ffmpeg wrote to stderr, trimmed. */
  get stderrTail(): string {
    return this.stderr.trim();
  }

  /**
   * Writes `chunk` to ffmpeg's stdin and resolves once the pipe has taken all of it (true), so frames
   * go no faster than ffmpeg reads them and the caller may reuse the buffer; false when stdin is gone
   * (ffmpeg exited or was killed), with the reason in its exit.
   */
  write(chunk: Buffer): Promise<boolean> {
    const stdin = this.child.stdin;
    if (this.ended || stdin.destroyed || stdin.writableEnded) return Promise.resolve(false);
    return new Promise((resolve) => stdin.write(chunk, (error) => resolve(!error)));
  }

  /** Ends stdin: ffmpeg flushes its encoder and exits. */
  endInput(): void {
    if (!this.child.stdin.writableEnded) this.child.stdin.end();
  }

  /** SIGKILLs ffmpeg if it still runs. */
  kill(): void {
    if (!this.ended) this.child.kill('SIGKILL');
  }

  /** Ends stdin and waits up to `graceMs` for ffmpeg to exit, then SIGKILLs it. */
  async close(graceMs: number): Promise<FfmpegExit> {
    if (this.ended) return this.exited;
    this.endInput();
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!inTime) this.kill();
    return this.exited;
  }

  /**
   * Kills ffmpeg when `signal` aborts or `timeoutMs` passes, after telling `onKill` why. Returns the
   * function that disarms the guard (call it once the guarded work is over).
   */
  guard({ signal, timeoutMs, onKill }: KillGuard): () => void {
    let armed = true;
    const fire = (reason: EncodeAbortedError | EncoderFailedError) => {
      if (!armed) return;
      disarm();
      onKill(reason);
      this.kill();
    };
    const onAbort = () => fire(this.aborted(signal));
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => fire(this.failure(`timed out after ${timeoutMs} ms`)), timeoutMs);
    const disarm = () => {
      armed = false;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) queueMicrotask(onAbort);
    else signal?.addEventListener('abort', onAbort, { once: true });
    return disarm;
  }

  /** An EncoderFailedError saying `what` happened, with the command line and the tail of stderr. */
  failure(what: string, cause?: Error): EncoderFailedError {
    const tail = this.stderrTail;
    return new EncoderFailedError(
      `${this.label} ${what}\ncommand: ${this.commandLine}\nstderr: ${tail || '(empty)'}`,
      this.commandLine,
      tail,
      cause ? { cause } : undefined,
    );
  }

  /** The EncodeAbortedError for an abort of `signal`, carrying its reason. */
  aborted(signal: AbortSignal | undefined): EncodeAbortedError {
    return new EncodeAbortedError(`${this.label} encode aborted: ${abortReason(signal)}`);
  }

  private onExit(exit: FfmpegExit): void {
    if (this.ended) return;
    this.ended = true;
    this.markExited(exit);
  }
}

export function abortReason(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? 'aborted' : String(reason);
}

export function firstLine(text: string): string {
  return text.split('\n', 1)[0];
}
