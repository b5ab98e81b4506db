import { EncodeAbortedError, InputTooLargeError } from './errors.js';
import type { FfmpegArgs } from './ffmpeg-args.js';
import { abortReason, FfmpegChild, firstLine } from './ffmpeg-child.js';

export interface FfmpegPipeRun {
  binary: string;
  args: FfmpegArgs;
  /** Written to ffmpeg's stdin with back-pressure: the next chunk is pulled once the pipe took the last. */
  input: AsyncIterable<Buffer>;
  signal?: AbortSignal;
  /** Kills ffmpeg and fails the run when it has not finished by then. */
  timeoutMs?: number;
  /** Output larger than this fails the run (a guard, not a quality knob). */
  maxOutputBytes?: number;
  /** Shown in error messages, e.g. the encoder name. */
  label?: string;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 1 << 30;

/**
 * Runs one ffmpeg (FfmpegChild) with `input` on stdin and collects stdout.
 * Rejects with the input's own CodecError when the frames were bad, EncodeAbortedError on abort
 * (ffmpeg is SIGKILLed), else EncoderFailedError carrying the command line and stderr's tail.
 */
export async function runFfmpegPipe(run: FfmpegPipeRun): Promise<Buffer> {
  const { signal } = run;
  const label = run.label ?? 'ffmpeg';
  const maxOutputBytes = run.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (signal?.aborted) throw new EncodeAbortedError(`${label} encode aborted: ${abortReason(signal)}`);

  const chunks: Buffer[] = [];
  let outputBytes = 0;
  let failure: Error | null = null;
  let child: FfmpegChild | null = null;
  const fail = (error: Error) => {
    failure ??= error;
    child?.kill();
  };
  child = await FfmpegChild.spawn({
    binary: run.binary,
    args: run.args,
    label,
    onStdout: (chunk) => {
      if (failure) return;
      outputBytes += chunk.length;
      if (outputBytes > maxOutputBytes) {
        fail(new InputTooLargeError(`${label} output exceeds ${maxOutputBytes} bytes`, maxOutputBytes));
        return;
      }
      chunks.push(chunk);
    },
  });
  const disarm = child.guard({ signal, timeoutMs: run.timeoutMs, onKill: fail });
  // Not awaited: once ffmpeg is gone its next write fails and the input is released (return()).
  pump(child, run.input, () => failure !== null).catch((error: unknown) =>
    fail(error instanceof Error ? error : new Error(String(error))),
  );
  const exit = await child.exited;
  disarm();
  if (failure) throw failure;
  if (exit.error) throw child.failure(`failed: ${firstLine(exit.error.message)}`, exit.error);
  return Buffer.concat(chunks, outputBytes);
}

async function pump(child: FfmpegChild, input: AsyncIterable<Buffer>, stopped: () => boolean): Promise<void> {
  for await (const chunk of input) {
    if (stopped() || !(await child.write(chunk))) return;
  }
  child.endInput();
}
