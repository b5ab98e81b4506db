import { BadRequestException, Inject, Injectable, PayloadTooLargeException } from '@nestjs/common';
import { inputChunkCount, type EncodeJobData, type EncodeJobInput, type InputEncoding } from '#contracts';
import { decodeImageToRgba } from '#codecs/image-input.js';
import { isCodecError } from '#codecs/errors.js';
import { encodeLz4BlockValue, lz4BlockPieces, lz4LiteralBlockHeader } from '#codecs/lz4-block.js';
import { BodyLengthError, BodyTooLargeError, BufferPool, FrameStore, type FrameEncoding } from '#cluster';
import { API_CONFIG, imageBytesBound, type ApiConfig } from '../config/api-config.js';
import { httpErrorFromCodec } from '../common/http-errors.js';
import { isPrototypeKey, prototypeKeyMessage } from '../common/strict-input.js';
import { multipartParts, type MultipartLimits } from './multipart-parts.js';
import { imagePartCheck } from './image-part-check.js';
import { UploadLimits, type Upload } from './upload-limits.js';

/**
 * Compressed uploads are stored as they arrive, in values of this size: big enough that a node reads
 * them in few round trips, small enough to stream (Redis values are written piece by piece anyway).
 */
export const INPUT_CHUNK_BYTES = 1024 * 1024;

/**
 * Raw frames as the API stores them: LZ4 blocks while LZ4 saves at least a tenth; an upload whose frame
 * it does not shrink that much (noise, camera content) is stored as literal blocks from that frame on,
 * which cost a header and no compression.
 */
const STORED_LZ4: FrameEncoding = {
  encode: async (frame) => {
    const value = await encodeLz4BlockValue(frame);
    return value.length <= frame.length * 0.9 ? value : null;
  },
  header: lz4LiteralBlockHeader,
};

/** Idle gathering buffers kept for the next uploads: four 1080p frames. */
const FRAME_BUFFERS_KEPT_BYTES = 4 * 1920 * 1080 * 4;

/** Most form fields a multipart upload may carry (the parameters are fewer than this). */
const MAX_FORM_FIELDS = 32;
const MAX_FORM_FIELD_BYTES = 1024;

/** Images stored as raw RGBA frames, and the form fields that came with them. */
export interface StoredImages {
  width: number;
  height: number;
  frames: number;
  fields: Record<string, unknown>;
}

/**
 * A submission's input in Redis, where nodes read it: raw frames (as sent, or compressed in chunks)
 * and uploaded images (decoded to raw frames), stored as the body streams in; and removed again.
 */
@Injectable()
export class InputStorage {
  /** Buffers raw frames are gathered in to be compressed, reused across uploads (page faults cost). */
  private readonly frameBuffers = new BufferPool(FRAME_BUFFERS_KEPT_BYTES);

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly frames: FrameStore,
    private readonly uploads: UploadLimits,
  ) {}

  /**
   * Stores a raw upload under `jobId`: frame by frame (`identity`: each frame compressed here into an
   * LZ4 block when it is at most STORE_LZ4_MAX_FRAME_BYTES and the memory budget has room for two, else
   * as sent; `lz4-block`: each block as sent, after its declared size is checked), or as sent, in chunks,
   * for a node to decompress (`lz4`, `gzip`, `deflate`). `onFrameStored` learns how frames are stored
   * before the first one is. Maps a body of the wrong length to 400 and one over the limit to 413; a
   * body that stalls is a 408. Whatever the failure, nothing of it stays stored.
   */
  async storeRawInput(
    jobId: string,
    upload: Upload,
    frameBytes: number,
    frames: number,
    contentLength: number | null,
    encoding: InputEncoding,
    onFrameStored?: (index: number, stored: InputEncoding) => void,
  ): Promise<EncodeJobInput> {
    const chunks = upload.chunks();
    const held = encoding === 'identity' ? this.compressionBuffers(frameBytes, frames) : null;
    const stored: InputEncoding = held ? 'lz4-block' : encoding;
    const stores = onFrameStored && ((index: number) => onFrameStored(index, stored));
    try {
      if (held) {
        const storedBytes = await this.frames.writeEncodedFrames(
          jobId,
          chunks,
          frameBytes,
          frames,
          STORED_LZ4,
          this.frameBuffers,
          stores,
        );
        return { encoding: stored, storedBytes };
      }
      if (encoding === 'identity') {
        await this.frames.writeFrames(jobId, chunks, frameBytes, frames, stores);
        return { encoding, storedBytes: frameBytes * frames };
      }
      if (encoding === 'lz4-block') {
        // Every record's declared size is checked as it arrives, before its block is stored.
        const pieces = lz4BlockPieces(chunks, frameBytes, frames);
        return { encoding, storedBytes: await this.frames.writeFrameValues(jobId, pieces, stores) };
      }
      const storedBytes = await this.frames.writeInputChunks(
        jobId,
        chunks,
        INPUT_CHUNK_BYTES,
        contentLength,
        this.config.maxBodyBytes,
      );
      if (storedBytes === 0) throw new BadRequestException(`the ${encoding} body is empty`);
      return { encoding, storedBytes, chunkBytes: INPUT_CHUNK_BYTES };
    } catch (error) {
      if (error instanceof BodyLengthError) throw new BadRequestException(error.message);
      if (isCodecError(error)) throw httpErrorFromCodec(error);
      if (error instanceof BodyTooLargeError) {
        throw new PayloadTooLargeException(
          `the ${encoding} body is larger than the limit of ${this.config.maxBodyBytes} bytes`,
        );
      }
      throw error;
    } finally {
      held?.release();
    }
  }

  /** Room for the frames a raw upload holds while they are compressed, or null: store them as sent. */
  private compressionBuffers(frameBytes: number, frames: number) {
    if (frameBytes > this.config.storeLz4MaxFrameBytes) return null;
    return this.uploads.frameBuffers(frameBytes * Math.min(frames, 2));
  }

  /**
   * Encoded frames: `frame` file parts (PNG, JPEG or WebP, all the same size) and form fields (added to
   * `fields`, which holds the query string's). Each image is decoded here, one at a time as the body
   * streams in, and stored as a raw RGBA frame: nodes then see the same input as for raw uploads (one
   * path to read, prefetch and encode, video included), a bad or oversized image is refused with a
   * 4xx while the client is still there rather than failing a queued job later. Each image is judged
   * from its first bytes (type, size from its header, then no more bytes than that size can take), and
   * what it holds in memory counts against IMAGE_BYTES_IN_FLIGHT. The cost is decode work on the
   * API, bounded to one image at a time per request. On failure, nothing of it stays stored.
   */
  async storeImages(
    jobId: string,
    upload: Upload,
    contentLength: number | null,
    query: Record<string, unknown>,
  ): Promise<StoredImages> {
    const { maxBodyBytes, maxFramePixels, maxFramesPerJob } = this.config;
    if (contentLength !== null && contentLength > maxBodyBytes) {
      throw new PayloadTooLargeException(`the body is ${contentLength} bytes; the limit is ${maxBodyBytes}`);
    }
    const limits: MultipartLimits = {
      maxBodyBytes,
      maxFileBytes: imageBytesBound(maxFramePixels, maxBodyBytes),
      maxFiles: maxFramesPerJob,
      maxFields: MAX_FORM_FIELDS,
      maxFieldBytes: MAX_FORM_FIELD_BYTES,
    };
    const memory = this.uploads.imageBuffer();
    limits.inspectFile = (name, filename) => {
      const label = `frame ${frames + 1}${filename ? ` (${filename})` : ''}`;
      if (name !== 'frame') {
        throw new BadRequestException(
          `unexpected file part "${name}": send images as file parts named "frame"`,
        );
      }
      // The previous image is stored by now: this one starts from nothing.
      memory.resize(0);
      return imagePartCheck(label, { maxPixels: maxFramePixels, maxBodyBytes }, memory);
    };
    const fields: Record<string, unknown> = { ...query };
    let size: { width: number; height: number } | null = null;
    let frames = 0;
    try {
      for await (const part of multipartParts(upload.request, limits, upload)) {
        if (part.kind === 'field') {
          if (isPrototypeKey(part.name))
            throw new BadRequestException(prototypeKeyMessage(part.name, 'form field'));
          if (part.name === 'frame') {
            throw new BadRequestException('frame must be a file part (an image), not a text field');
          }
          if (Object.hasOwn(fields, part.name)) throw new BadRequestException(`${part.name} is given twice`);
          fields[part.name] = part.value;
          continue;
        }
        const label = `frame ${frames + 1}${part.filename ? ` (${part.filename})` : ''}`;
        if (part.data.length === 0) throw new BadRequestException(`${label} is empty`);
        const image = await decodeImageToRgba(part.data, { maxPixels: maxFramePixels }).catch(
          (error: unknown) => {
            throw isCodecError(error) ? httpErrorFromCodec(error, label) : error;
          },
        );
        size ??= { width: image.width, height: image.height };
        if (image.width !== size.width || image.height !== size.height) {
          throw new BadRequestException(
            `${label} is ${image.width}x${image.height} but frame 1 is ${size.width}x${size.height}; all frames must have the same size`,
          );
        }
        const decodedBytes = image.data.length * (frames + 1);
        if (decodedBytes > maxBodyBytes) {
          throw new PayloadTooLargeException(
            `the frames decode to more than ${maxBodyBytes} bytes of pixels, the limit per job; send fewer frames per job`,
          );
        }
        await this.frames.writeFrame(jobId, frames, image.data);
        frames++;
      }
      if (!size) {
        throw new BadRequestException(
          'no frames: send one or more PNG, JPEG or WebP images as file parts named "frame"',
        );
      }
      return { ...size, frames, fields };
    } catch (error) {
      await this.frames.deleteFrames(jobId, frames).catch(() => undefined);
      throw error;
    } finally {
      memory.release();
    }
  }

  async deleteInput(data: Pick<EncodeJobData, 'jobId' | 'frames' | 'input'>): Promise<void> {
    if (data.input.encoding === 'identity' || data.input.encoding === 'lz4-block')
      await this.frames.deleteFrames(data.jobId, data.frames);
    else await this.frames.deleteInputChunks(data.jobId, inputChunkCount(data.input));
  }
}
