export * from './encoder.js';
export * from './errors.js';
export * from './settings.js';
export * from './pixel-formats.js';
export * from './image-encoders.js';
export * from './video-implementations.js';
export * from './ffmpeg-binaries.js';
export * from './ffmpeg-args.js';
export * from './ffmpeg-process.js';
export * from './video-encoders.js';
export * from './live/avi-packets.js';
export * from './live/keyframes.js';
export * from './live/live-args.js';
export * from './live/live-video-session.js';
export * from './registry.js';
export * from './sharp-config.js';
export { syntheticFrame, syntheticRgba, rgbaToPixelFormat } from './testing/synthetic-frames.js';
export * from './probe.js';
export * from './decompress.js';
export * from './image-input.js';
export * from './image-header.js';
export { compressLz4Frame, decompressLz4Frames, type Lz4FrameOptions } from './lz4.js';
export {
  decodeLz4BlockFrames,
  stopLz4DecodeThreads,
  decodeLz4BlockValue,
  encodeLz4BlockBody,
  encodeLz4BlockRecordSync,
  encodeLz4BlockValue,
  lz4BlockBound,
  lz4BlockPieces,
  lz4LiteralBlockHeader,
  maxLz4BlockValue,
  LZ4_BLOCK_ENCODING,
  type FrameBuffers,
} from './lz4-block.js';
export { Lz4DecodeThreads, isSharedBuffer } from './lz4-decode-threads.js';
