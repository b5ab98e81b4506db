import { encodeLz4BlockRecordSync, syntheticFrame } from '#codecs';
import { FRAME_FORMAT, type BenchCase, type Resolution } from './cases.js';

/**
 * The bench's input: desktop-like synthetic frames (generated once per resolution, then cycled) and
 * their LZ4-compressed forms. Everything is prepared before any clock starts.
 */
export class FrameLibrary {
  private readonly raw = new Map<string, Buffer[]>();
  private readonly lz4 = new Map<string, Buffer[][]>();

  constructor(private readonly distinct: number) {}

  frames(resolution: Resolution): Buffer[] {
    let frames = this.raw.get(resolution.label);
    if (!frames) {
      const { width, height } = resolution;
      frames = Array.from({ length: this.distinct }, (_, frameIndex) =>
        syntheticFrame({ width, height, format: FRAME_FORMAT, frameIndex }),
      );
      this.raw.set(resolution.label, frames);
    }
    return frames;
  }

  /** Each raw frame's record of an `lz4-block` body (what the SDK sends by default), header and value. */
  private lz4Frames(resolution: Resolution): Buffer[][] {
    let compressed = this.lz4.get(resolution.label);
    if (!compressed) {
      compressed = this.frames(resolution).map((frame) => encodeLz4BlockRecordSync(frame));
      this.lz4.set(resolution.label, compressed);
    }
    return compressed;
  }

  /** The raw frames of job `job` of a case: consecutive frames, so that video batches see motion. */
  jobFrames(benchCase: BenchCase, job: number): Buffer[] {
    return pick(this.frames(benchCase.resolution), benchCase, job);
  }

  /** The request body of job `job`, as parts to write one after the other. */
  jobBody(benchCase: BenchCase, job: number): Buffer[] {
    return benchCase.encoding === 'identity'
      ? this.jobFrames(benchCase, job)
      : pick(this.lz4Frames(benchCase.resolution), benchCase, job).flat();
  }

  /** Prepares what a case will send, so that generating frames never runs inside a measurement. */
  prepare(benchCase: BenchCase): void {
    this.jobBody(benchCase, 0);
  }
}

function pick<T>(all: T[], benchCase: BenchCase, job: number): T[] {
  const first = job * benchCase.framesPerJob;
  return Array.from({ length: benchCase.framesPerJob }, (_, index) => all[(first + index) % all.length]);
}
