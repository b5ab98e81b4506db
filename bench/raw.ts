import { isVideoCodec } from '#contracts';
import { configureSharp, createEncoder, threadsPerJob, type Encoder, type RawLayout } from '#codecs';
import { caseThroughput, FRAME_FORMAT, SETTINGS, type BenchCase } from './cases.js';
import type { FrameLibrary } from './frames.js';
import { runLanes } from './lanes.js';

export interface RawRun {
  frames: number;
  seconds: number;
  fps: number;
  outputBytes: number;
  /** sharp, or the ffmpeg encoder used. */
  implementation: string;
}

async function* iterate(frames: Buffer[]): AsyncGenerator<Buffer> {
  yield* frames;
}

function layoutOf(benchCase: BenchCase): RawLayout {
  const { width, height } = benchCase.resolution;
  return { width, height, format: FRAME_FORMAT };
}

/**
 * Encoding alone, in this process, through the same libs/codecs encoders and the same sizing as an
 * encoder node with `concurrency` job slots (sharp threads and ffmpeg threads = cores / concurrency),
 * with `concurrency` encodes in flight: the ceiling the service is compared with.
 */
export class RawEncoding {
  constructor(private readonly concurrency: number) {
    configureSharp({ concurrency });
  }

  private encoderFor(benchCase: BenchCase): Encoder {
    return isVideoCodec(benchCase.codec)
      ? createEncoder(benchCase.codec, undefined, { threads: threadsPerJob(this.concurrency) })
      : createEncoder(benchCase.codec);
  }

  /** Encodes one job's frames (one image, or one video batch); resolves with the output size. */
  private async encodeJob(encoder: Encoder, layout: RawLayout, frames: Buffer[]): Promise<number> {
    if (encoder.kind === 'video')
      return (await encoder.encode(iterate(frames), frames.length, layout, SETTINGS)).length;
    let bytes = 0;
    for (const frame of frames) bytes += (await encoder.encode(frame, layout, SETTINGS)).length;
    return bytes;
  }

  /** Not measured: each lane encodes a short unit once (code, tables and ffmpeg's binary in memory). */
  async warmUp(benchCase: BenchCase, library: FrameLibrary): Promise<void> {
    const encoder = this.encoderFor(benchCase);
    await runLanes(this.concurrency, this.concurrency, (unit) =>
      this.encodeJob(encoder, layoutOf(benchCase), library.jobFrames(benchCase, unit).slice(0, 2)),
    );
  }

  async run(benchCase: BenchCase, library: FrameLibrary): Promise<RawRun> {
    const encoder = this.encoderFor(benchCase);
    const layout = layoutOf(benchCase);
    const started = performance.now();
    const sizes = await runLanes(benchCase.jobs, this.concurrency, (job) =>
      this.encodeJob(encoder, layout, library.jobFrames(benchCase, job)),
    );
    return {
      ...caseThroughput(benchCase, started),
      outputBytes: sizes.reduce((sum, size) => sum + size, 0),
      implementation: encoder.kind === 'video' ? encoder.implementation : 'sharp',
    };
  }
}
