import { isVideoCodec, type Codec, type ImageCodec, type VideoCodec } from '#contracts';
import type { Encoder, EncoderFor, ImageEncoder, VideoEncoder } from './encoder.js';
import { UnsupportedCodecError } from './errors.js';
import { SharpImageEncoder } from './image-encoders.js';
import { codecOfImplementation, defaultVideoImplementation } from './video-implementations.js';
import { FfmpegVideoEncoder, type VideoEncoderOptions } from './video-encoders.js';

/** What createEncoder gives: the concrete classes, which add a few helpers to the interfaces. */
export type CreatedEncoder<C extends Codec> = C extends ImageCodec ? SharpImageEncoder : FfmpegVideoEncoder;

/**
 * An encoder for `codec`. Video codecs take the ffmpeg encoder name (`implementation`), by default the
 * preferred software one; AV1 on SVT-AV1 falls back to libaom-av1 for sizes SVT-AV1 cannot take.
 */
export function createEncoder<C extends Codec>(
  codec: C,
  implementation?: string,
  options?: VideoEncoderOptions,
): CreatedEncoder<C>;
export function createEncoder(
  codec: Codec,
  implementation?: string,
  options: VideoEncoderOptions = {},
): Encoder {
  if (!isVideoCodec(codec)) {
    if (implementation !== undefined && implementation !== 'sharp') {
      throw new UnsupportedCodecError(`${codec} is encoded by sharp, not by '${implementation}'`);
    }
    return new SharpImageEncoder(codec);
  }
  const chosen = implementation ?? defaultVideoImplementation(codec);
  if (codecOfImplementation(chosen) !== codec) {
    throw new UnsupportedCodecError(`'${chosen}' is not an encoder for ${codec}`);
  }
  const fallbackImplementation =
    options.fallbackImplementation ?? (chosen === 'libsvtav1' ? 'libaom-av1' : undefined);
  return new FfmpegVideoEncoder(codec, chosen, { ...options, fallbackImplementation });
}

/** The encoders one node uses: one per codec it can encode. */
export class EncoderRegistry {
  private readonly encoders = new Map<Codec, Encoder>();

  constructor(encoders: Iterable<Encoder> = []) {
    for (const encoder of encoders) this.encoders.set(encoder.codec, encoder);
  }

  /**
   * Builds a registry from a probe's choice of implementation per codec (see probeEncoders).
   * `fallbacks` gives a software encoder per video codec for frames the chosen one cannot take.
   */
  static fromImplementations(
    implementations: Partial<Record<Codec, string>>,
    options: VideoEncoderOptions & { fallbacks?: Partial<Record<VideoCodec, string>> } = {},
  ): EncoderRegistry {
    const { fallbacks = {}, ...encoderOptions } = options;
    const encoders: Encoder[] = [];
    for (const [codec, implementation] of Object.entries(implementations) as [Codec, string][]) {
      const fallbackImplementation = isVideoCodec(codec) ? fallbacks[codec] : undefined;
      encoders.push(
        createEncoder(codec, implementation, {
          ...encoderOptions,
          ...(fallbackImplementation && fallbackImplementation !== implementation
            ? { fallbackImplementation }
            : {}),
        }),
      );
    }
    return new EncoderRegistry(encoders);
  }

  has(codec: Codec): boolean {
    return this.encoders.has(codec);
  }

  codecs(): Codec[] {
    return [...this.encoders.keys()];
  }

  get<C extends Codec>(codec: C): EncoderFor<C> {
    const encoder = this.encoders.get(codec);
    if (!encoder) throw new UnsupportedCodecError(`this node cannot encode ${codec}`);
    return encoder as EncoderFor<C>;
  }

  image(codec: ImageCodec): ImageEncoder {
    return this.get(codec);
  }

  video(codec: VideoCodec): VideoEncoder {
    return this.get(codec);
  }
}
