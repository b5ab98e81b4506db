import { isVideoCodec, type OutputInfo } from '#contracts';
import type { Encoder, ImageEncoder, VideoEncoder } from '#codecs/encoder.js';
import { PermanentJobError, throwIfAborted, type EncodeRun, type EncodeStrategy } from './execution-core.js';

/**
 * The strategies of batch work plugged into the ExecutionCore: images frame by frame, video as one
 * segment from one ffmpeg run. The live strategy is the LiveStreamSequencer's (one ffmpeg per stream).
 */

/** One image per frame, stopping between frames once the unit is aborted (sharp cannot be interrupted inside one). */
export class ImageStrategy implements EncodeStrategy {
  constructor(private readonly encoder: ImageEncoder) {}

  async encode(run: EncodeRun): Promise<OutputInfo[]> {
    const { encoder } = this;
    const outputs: OutputInfo[] = [];
    for await (const frame of run.frames) {
      throwIfAborted(run.signal);
      const encoded = await run.timer.encode(() => encoder.encode(frame, run.layout, run.data.settings));
      throwIfAborted(run.signal);
      outputs.push(await run.store(outputs.length, encoder.contentType, encoded));
      await run.progress(outputs.length);
    }
    return outputs;
  }
}

/** The unit's frames as one self-contained segment (output 0), from one ffmpeg run that an abort kills. */
export class VideoSegmentStrategy implements EncodeStrategy {
  constructor(private readonly encoder: VideoEncoder) {}

  async encode(run: EncodeRun): Promise<OutputInfo[]> {
    const { data } = run;
    if (!isVideoCodec(data.codec)) throw new PermanentJobError(`codec ${data.codec} is not a video codec`);
    const counted = countFrames(run.frames, (done) => void run.progress(done));
    const segment = await run.timer.encode(() =>
      this.encoder.encode(counted, data.frames, run.layout, data.settings, { signal: run.signal }),
    );
    return [await run.store(0, this.encoder.contentType, segment)];
  }
}

export function batchStrategyFor(encoder: Encoder): EncodeStrategy {
  return encoder.kind === 'image' ? new ImageStrategy(encoder) : new VideoSegmentStrategy(encoder);
}

async function* countFrames(
  frames: AsyncIterable<Buffer>,
  onFrame: (done: number) => void,
): AsyncGenerator<Buffer> {
  let done = 0;
  for await (const frame of frames) {
    yield frame;
    onFrame(++done);
  }
}
