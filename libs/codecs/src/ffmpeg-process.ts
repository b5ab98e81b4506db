import ffmpeg from 'fluent-ffmpeg';
import { Writable, type Readable } from 'node:stream';
import { EncodeAbortedError, EncoderFailedError, InputTooLargeError, isCodecError } from './errors.js';
import { ffmpegArgv, formatCommandLine, type FfmpegArgs } from './ffmpeg-args.js';

export interface FfmpegPipeRun {
  binary: string;
  args: FfmpegArgs;
  /** Piped into ffmpeg's stdin with backpressure: it is read only as fast as ffmpeg consumes. */
  input: Readable;
  signal?: AbortSignal;
  /** Output larger than this fails the run (a guard, not a quality knob). */
  maxOutputBytes?: number;
  /** Shown in error messages, e.g. the encoder name. */
  label?: string;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 1 << 30;
const STDERR_TAIL_CHARS = 2000;

/**
 * Runs ffmpeg through fluent-ffmpeg with `input` on stdin and collects stdout.
 * Rejects with the input stream's own CodecError when the frames were bad, EncodeAbortedError on
 * abort (ffmpeg is SIGKILLed), else EncoderFailedError carrying the command line and stderr's tail.
 */
export async function runFfmpegPipe(run: FfmpegPipeRun): Promise<Buffer> {
  await loadFfmpegCapabilities(run.binary);
  return runOnce(run);
}

let capabilitiesLoaded: Promise<void> | null = null;

/**
 * fluent-ffmpeg checks every command against `ffmpeg -formats` and `-encoders`, caching them after the
 * first answer; commands started in parallel before that each run both. Load them once, up front.
 */
function loadFfmpegCapabilities(binary: string): Promise<void> {
  capabilitiesLoaded ??= new Promise<void>((resolve) => {
    const command = ffmpeg().setFfmpegPath(binary);
    command.availableFormats((formatsError) => {
      if (formatsError) capabilitiesLoaded = null; // try again next time; the run itself reports the error
      command.availableEncoders(() => resolve());
    });
  });
  return capabilitiesLoaded;
}

function runOnce(run: FfmpegPipeRun): Promise<Buffer> {
  const { binary, args, input, signal } = run;
  const maxOutputBytes = run.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const commandLine = formatCommandLine(binary, ffmpegArgv(args));
  const label = run.label ?? 'ffmpeg';

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let outputBytes = 0;
    let settled = false;
    let processEnded = false;
    let outputFinished = false;
    let started = false;
    let killRequested = false;

    // No 'close' event: fluent-ffmpeg treats a closed output stream as a failure and kills ffmpeg.
    const collector = new Writable({
      emitClose: false,
      autoDestroy: false,
      write(chunk: Buffer, _encoding, callback) {
        outputBytes += chunk.length;
        if (outputBytes > maxOutputBytes) {
          callback(new InputTooLargeError(`${label} output exceeds ${maxOutputBytes} bytes`, maxOutputBytes));
          return;
        }
        chunks.push(chunk);
        callback();
      },
    });

    const command = ffmpeg({ stdoutLines: 40 })
      .setFfmpegPath(binary)
      .input(input)
      .inputOptions(...args.input)
      .output(collector)
      .outputOptions(...args.output);

    const kill = () => {
      killRequested = true;
      if (started) command.kill('SIGKILL');
    };

    const finish = (error: Error | null) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (error) {
        kill();
        input.destroy();
        reject(error);
      } else {
        resolve(Buffer.concat(chunks, outputBytes));
      }
    };

    const onAbort = () => finish(new EncodeAbortedError(`${label} encode aborted: ${abortReason(signal)}`));

    command.on('start', () => {
      started = true;
      if (killRequested) command.kill('SIGKILL');
    });
    command.on('end', () => {
      processEnded = true;
      if (outputFinished) finish(null);
    });
    collector.on('finish', () => {
      outputFinished = true;
      if (processEnded) finish(null);
    });
    command.on(
      'error',
      (error: Error & { inputStreamError?: unknown; outputStreamError?: unknown }, _out, stderr) => {
        const cause = error.inputStreamError ?? error.outputStreamError;
        if (isCodecError(cause)) {
          finish(cause);
          return;
        }
        const tail = (stderr ?? '').slice(-STDERR_TAIL_CHARS).trim();
        finish(
          new EncoderFailedError(
            `${label} failed: ${firstLine(error.message)}\ncommand: ${commandLine}\nstderr: ${tail || '(empty)'}`,
            commandLine,
            tail,
            { cause: error },
          ),
        );
      },
    );

    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    command.run();
  });
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0];
}

function abortReason(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? 'aborted' : String(reason);
}
