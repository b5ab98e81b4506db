import type { VideoEncoder } from '#codecs/encoder.js';

/** A video encoder that reads all its frames and returns `mp4`, unless `overrides` say otherwise. */
export function fakeVideoEncoder(overrides: Partial<VideoEncoder> = {}): VideoEncoder {
  return {
    kind: 'video',
    codec: 'h264',
    contentType: 'video/mp4',
    implementation: 'fake',
    startLive: () => Promise.reject(new Error('not used')),
    encode: async (frames) => {
      for await (const frame of frames) void frame;
      return Buffer.from('mp4');
    },
    ...overrides,
  };
}

/** The compressed-input reads of EncodeJobIO, for fakes whose jobs store raw frames only. */
export class RawFramesOnly {
  // eslint-disable-next-line require-yield
  async *readInputChunks(): AsyncGenerator<Buffer> {
    throw new Error('not used');
  }
  // eslint-disable-next-line require-yield
  async *readFrameValues(): AsyncGenerator<Buffer> {
    throw new Error('not used');
  }
  async deleteInputChunks() {}
}
