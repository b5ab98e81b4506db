import { encodeLz4BlockBody } from '#codecs/lz4-block.js';

/**
 * How raw frames travel: `lz4` (the default) compresses each frame into one LZ4 block
 * (`Content-Encoding: lz4-block`) on libuv's thread pool: desktop frames shrink ~10x, and with them
 * the bytes through HTTP and Redis, and the node decompresses each frame in one native call. `none`
 * sends them as they are.
 */
export type UploadCompression = 'lz4' | 'none';

export const UPLOAD_COMPRESSIONS: readonly UploadCompression[] = ['lz4', 'none'];

/**
 * The body and headers of `frames` raw frames. The body goes as it is when compression is off, when
 * the caller chose its own Content-Encoding, or when it is not a whole number of frames (the API then
 * answers what is wrong with it).
 */
export async function rawUploadBody(
  body: Buffer,
  frames: number,
  compression: UploadCompression,
  headers: Record<string, string> = {},
): Promise<{ body: Buffer; headers: Record<string, string> }> {
  const encoded = Object.keys(headers).some((name) => name.toLowerCase() === 'content-encoding');
  const frameBytes = frames > 0 ? body.length / frames : 0;
  if (compression !== 'lz4' || encoded || !Number.isInteger(frameBytes) || frameBytes < 1) {
    return { body, headers };
  }
  const parts = await encodeLz4BlockBody(body, frameBytes);
  return { body: Buffer.concat(parts), headers: { ...headers, 'content-encoding': 'lz4-block' } };
}
