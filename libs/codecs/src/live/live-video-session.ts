import os from 'node:os';
import { LIVE_PACKET_CONTENT_TYPES, type EncodeSettings, type VideoCodec } from '#contracts';
import type { RawLayout } from '../encoder.js';
import { EncoderFailedError, UnsupportedInputError } from '../errors.js';
import { ffmpegArgv, formatCommandLine, layoutRejection, type FfmpegArgs } from '../ffmpeg-args.js';
import { ffmpegBinaries } from '../ffmpeg-binaries.js';
import { FfmpegChild, firstLine, type FfmpegExit } from '../ffmpeg-child.js';
import { assertValidLayout, frameBytes } from '../pixel-formats.js';
import { normalizeSettings } from '../settings.js';
import { takeExactBytes } from '../video-encoders.js';
import { AviPacketParser } from './avi-packets.js';
import { isKeyframePacket } from './keyframes.js';
import { buildLiveEncodeArgs, liveImplementation } from './live-args.js';

/**
 * A live (stateful) video encode: one long-running ffmpeg per stream, fed raw frames a batch at a
 * time, giving back exactly one packet per frame as soon as that frame is encoded. Compared with a
 * segment per batch (FfmpegVideoEncoder.encode), inter-frame prediction carries across batches, so a
 * one-frame batch costs a P-frame instead of a keyframe, and there is no process start per batch.
 * Packets come out of ffmpeg as AVI chunks (see avi-packets.ts); keyframe flags are read from the
 * bitstream (keyframes.ts).
 * ffmpeg runs in an FfmpegChild, the wrapper batch encodes use too.
 */

export interface LivePacket {
  /** One frame's packet: an Annex B access unit (H.264/HEVC), a VP8/VP9 frame, an AV1 temporal unit. */
  data: Buffer;
  /** Decoding can start at this packet. */
  keyframe: boolean;
}

export interface LiveVideoSessionOptions {
  /** ffmpeg binary; default ffmpegBinaries().ffmpeg. */
  binary?: string;
  codec: VideoCodec;
  /** ffmpeg encoder; mapped through liveImplementation (libsvtav1 -> libaom-av1). */
  implementation: string;
  layout: RawLayout;
  settings: Partial<EncodeSettings>;
  /** Frames between keyframes; the first packet is always a keyframe. */
  keyframeInterval: number;
  /** Encoder threads; default: all cores. */
  threads?: number;
  vaapiDevice?: string;
  /** Shown in error messages; default "<codec> live (<implementation>)". */
  label?: string;
}

export interface LiveEncodeOptions {
  /** Aborting kills the session (its encoder state is lost) and rejects with EncodeAbortedError. */
  signal?: AbortSignal;
  /** Kills the session and rejects with EncoderFailedError when the packets are not all out by then. */
  timeoutMs?: number;
}

/** Default time a batch may take: generous, since a loaded 2-core box must not kill healthy streams. */
export function defaultLiveTimeoutMs(frameCount: number): number {
  return 10_000 + 2_000 * frameCount;
}

export const LIVE_CLOSE_GRACE_MS = 5_000;

/** A batch handed to the encoder: `written` once its frames are in ffmpeg's stdin (or it failed), never rejects. */
export interface SubmittedBatch {
  written: Promise<void>;
  packets: Promise<LivePacket[]>;
}

interface Batch {
  expected: number;
  packets: LivePacket[];
  bytesWritten: number;
  settled: boolean;
  resolve(packets: LivePacket[]): void;
  reject(error: Error): void;
}

export class LiveVideoSession {
  readonly contentType: string;
  readonly commandLine: string;
  private readonly parser = new AviPacketParser();
  private readonly frameSize: number;
  private child!: FfmpegChild;
  /** Resolves once ffmpeg's exit is handled (every packet parsed before). */
  private exitHandled!: Promise<void>;
  /** Serializes the batches' writes: the next one writes once the one before is in stdin. */
  private queue: Promise<void> = Promise.resolve();
  /** Batches written (or being written) whose packets are not all out, oldest first. */
  private readonly pending: Batch[] = [];
  private readonly unsettled = new Set<Promise<unknown>>();
  private packetsOut = 0;
  private encodedFrames = 0;
  private closing = false;
  private closed: Promise<void> | null = null;
  private failure: EncoderFailedError | null = null;

  private constructor(
    readonly codec: VideoCodec,
    readonly implementation: string,
    readonly layout: RawLayout,
    readonly settings: EncodeSettings,
    readonly keyframeInterval: number,
    private readonly binary: string,
    private readonly args: FfmpegArgs,
    private readonly label: string,
  ) {
    this.contentType = LIVE_PACKET_CONTENT_TYPES[codec];
    this.commandLine = formatCommandLine(binary, ffmpegArgv(args));
    this.frameSize = frameBytes(layout);
  }

  /**
   * Spawns ffmpeg for one stream. Resolves once the process runs; encoder errors (bad options, no
   * device) show when the first frame reaches the encoder, i.e. as the first encode's rejection.
   */
  static async start(options: LiveVideoSessionOptions): Promise<LiveVideoSession> {
    const { codec, layout, keyframeInterval } = options;
    assertValidLayout(layout);
    if (!Number.isInteger(keyframeInterval) || keyframeInterval < 1) {
      throw new UnsupportedInputError(
        `keyframe interval must be a positive integer, got ${keyframeInterval}`,
      );
    }
    const settings = normalizeSettings(options.settings);
    const implementation = liveImplementation(options.implementation);
    const rejection = layoutRejection(implementation, layout, settings.oddSize);
    if (rejection) {
      throw new UnsupportedInputError(
        `${codec} cannot encode ${layout.width}x${layout.height} live: ${rejection}`,
      );
    }
    const args = buildLiveEncodeArgs({
      codec,
      implementation,
      layout,
      settings,
      threads: options.threads ?? os.availableParallelism(),
      keyframeInterval,
      vaapiDevice: options.vaapiDevice,
    });
    const session = new LiveVideoSession(
      codec,
      implementation,
      layout,
      settings,
      keyframeInterval,
      options.binary ?? ffmpegBinaries().ffmpeg,
      args,
      options.label ?? `${codec} live (${implementation})`,
    );
    await session.spawn();
    return session;
  }

  /** Frames whose packets have been handed out. */
  get framesEncoded(): number {
    return this.encodedFrames;
  }

  /** ffmpeg runs and takes frames: not failed, killed or closing. */
  get alive(): boolean {
    return this.child.running && !this.failure && !this.closing;
  }

  /** The ffmpeg process id while it runs. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Writes `frameCount` raw frames (any chunking; exactly frameCount * frame size bytes) and resolves
   * with their `frameCount` packets, in order, as soon as the last is out. Calls write one after another.
   * Timeout or abort kills the session; a session that died rejects every later call with
   * EncoderFailedError. Input of the wrong length rejects with UnsupportedInputError, and also ends
   * the session when part of it had already gone to ffmpeg.
   */
  encode(
    frames: AsyncIterable<Buffer> | Buffer[],
    frameCount: number,
    options: LiveEncodeOptions = {},
  ): Promise<LivePacket[]> {
    return this.submit(frames, frameCount, options).packets;
  }

  /**
   * encode(), in two steps: `written` settles once the batch's frames are in ffmpeg's stdin, so that a
   * caller with the next frame at hand can submit it while this one encodes (a live session's window),
   * instead of leaving ffmpeg idle while the packet travels and the next frame is written.
   */
  submit(
    frames: AsyncIterable<Buffer> | Buffer[],
    frameCount: number,
    options: LiveEncodeOptions = {},
  ): SubmittedBatch {
    if (!Number.isInteger(frameCount) || frameCount < 1) {
      const error = new UnsupportedInputError(`frame count must be a positive integer, got ${frameCount}`);
      return { written: Promise.resolve(), packets: Promise.reject(error) };
    }
    if (this.closing)
      return { written: Promise.resolve(), packets: Promise.reject(this.failedError('session is closed')) };
    const { signal } = options;
    let markWritten!: () => void;
    const written = new Promise<void>((resolve) => (markWritten = resolve));
    const packets = new Promise<LivePacket[]>((resolve, reject) => {
      let cancelled = false;
      // While queued, an abort only drops this call: nothing was written yet.
      const onQueuedAbort = () => {
        cancelled = true;
        reject(this.child.aborted(signal));
      };
      signal?.addEventListener('abort', onQueuedAbort, { once: true });
      this.queue = this.queue.then(async () => {
        signal?.removeEventListener('abort', onQueuedAbort);
        if (cancelled) return markWritten();
        const batch = this.runBatch(frames, frameCount, options);
        batch.packets.then(resolve, reject);
        await batch.written;
        markWritten();
      });
    });
    const tracked = packets.catch(() => undefined).finally(() => this.unsettled.delete(tracked));
    this.unsettled.add(tracked);
    return { written, packets };
  }

  /**
   * Lets encodes already called finish (each bounded by its timeout), then ends stdin and waits up to
   * 5 s for ffmpeg to exit before SIGKILL. Idempotent; later encodes reject.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    await this.queue;
    await Promise.all([...this.unsettled]);
    await this.child.close(LIVE_CLOSE_GRACE_MS);
    await this.exitHandled;
  }

  private async spawn(): Promise<void> {
    this.child = await FfmpegChild.spawn({
      binary: this.binary,
      args: this.args,
      label: this.label,
      onStdout: (chunk) => this.onOutput(chunk),
    });
    this.exitHandled = this.child.exited.then((exit) => this.onExit(exit));
  }

  private runBatch(
    frames: AsyncIterable<Buffer> | Buffer[],
    frameCount: number,
    options: LiveEncodeOptions,
  ): SubmittedBatch {
    const { signal } = options;
    const refused = (error: Error) => ({ written: Promise.resolve(), packets: Promise.reject(error) });
    if (this.failure) return refused(this.failure);
    if (signal?.aborted) return refused(this.child.aborted(signal));
    if (Array.isArray(frames)) {
      const total = frames.reduce((sum, frame) => sum + frame.length, 0);
      if (total !== frameCount * this.frameSize) {
        return refused(
          new UnsupportedInputError(
            `expected ${frameCount} frames of ${this.frameSize} bytes (${frameCount * this.frameSize} bytes), got ${total} bytes`,
          ),
        );
      }
    }
    let resolveBatch!: (packets: LivePacket[]) => void;
    let rejectBatch!: (error: Error) => void;
    const promise = new Promise<LivePacket[]>((resolve, reject) => {
      resolveBatch = resolve;
      rejectBatch = reject;
    });
    const batch: Batch = {
      expected: frameCount,
      packets: [],
      bytesWritten: 0,
      settled: false,
      resolve: (packets) => settle(() => resolveBatch(packets)),
      reject: (error) => settle(() => rejectBatch(error)),
    };
    const settle = (action: () => void) => {
      if (batch.settled) return;
      batch.settled = true;
      const at = this.pending.indexOf(batch);
      if (at >= 0) this.pending.splice(at, 1);
      action();
    };
    this.pending.push(batch);

    const timeoutMs = options.timeoutMs ?? defaultLiveTimeoutMs(frameCount);
    const disarm = this.child.guard({
      signal,
      timeoutMs,
      onKill: (reason) => {
        if (reason instanceof EncoderFailedError) {
          this.terminate(
            this.failedError(
              `timed out after ${timeoutMs} ms with ${batch.packets.length}/${frameCount} packets out`,
            ),
          );
        } else {
          batch.reject(reason);
          this.terminate(this.failedError(`session killed: ${reason.message}`));
        }
      },
    });

    const source = Array.isArray(frames) ? iterate(frames) : frames;
    const written = this.writeFrames(takeExactBytes(source, frameCount, this.frameSize), batch).catch(
      (error: unknown) => {
        if (batch.settled) return;
        const cause = error instanceof Error ? error : new Error(String(error));
        if (batch.bytesWritten === 0) batch.reject(cause);
        else {
          batch.reject(cause);
          this.terminate(this.failedError(`input failed mid-batch: ${cause.message}`));
        }
      },
    );
    // A batch that failed (killed, timed out) counts as written: its source may never end.
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    return { written: Promise.race([written, settled]), packets: promise.finally(disarm) };
  }

  private async writeFrames(source: AsyncIterable<Buffer>, batch: Batch): Promise<void> {
    for await (const chunk of source) {
      if (batch.settled) return;
      batch.bytesWritten += chunk.length;
      // False once ffmpeg is gone (killed when the batch failed): its exit says why.
      if (!(await this.child.write(chunk))) return;
    }
  }

  private onOutput(chunk: Buffer): void {
    let packets: Buffer[];
    try {
      packets = this.parser.push(chunk);
    } catch (error) {
      this.terminate(this.failedError(`unreadable output: ${(error as Error).message}`));
      return;
    }
    for (const data of packets) this.onPacket(data);
  }

  private onPacket(data: Buffer): void {
    if (this.failure) return;
    const batch = this.pending[0];
    if (!batch) {
      if (this.closing) return; // flushed at end of stream, nobody waits for it
      this.terminate(this.failedError('ffmpeg emitted a packet with no frame pending (encoder latency?)'));
      return;
    }
    const keyframe = data.length > 0 && isKeyframePacket(this.codec, data);
    if (this.packetsOut === 0 && !keyframe) {
      this.terminate(this.failedError('the first packet of the session is not a keyframe'));
      return;
    }
    this.packetsOut += 1;
    batch.packets.push({ data, keyframe });
    if (batch.packets.length === batch.expected) {
      this.encodedFrames += batch.expected;
      batch.resolve(batch.packets);
    }
  }

  /** Marks the session failed (first reason wins), kills ffmpeg and rejects every batch in flight. */
  private terminate(failure: EncoderFailedError): void {
    this.failure ??= failure;
    this.rejectPending(failure);
    this.child.kill();
  }

  private rejectPending(error: Error): void {
    for (const batch of [...this.pending]) batch.reject(error);
  }

  /** ffmpeg exited: unless it was closed with nothing pending, that is the session's failure. */
  private onExit(exit: FfmpegExit): void {
    if (!this.failure && !(this.closing && this.pending.length === 0)) {
      const reason = exit.error ? firstLine(exit.error.message) : 'ffmpeg exited';
      this.failure = this.failedError(`ffmpeg ended: ${reason}`, exit.error ?? undefined);
    }
    if (this.failure) this.rejectPending(this.failure);
  }

  private failedError(what: string, cause?: Error): EncoderFailedError {
    return this.child.failure(what, cause);
  }
}

async function* iterate(buffers: Buffer[]): AsyncGenerator<Buffer> {
  for (const buffer of buffers) yield buffer;
}
