import { InputTooLargeError, UnsupportedInputError } from './errors.js';

/** A stored `lz4-block` value starts with the raw size it decompresses to (u32 LE). */
export const SIZE_PREFIX_BYTES = 4;

/** How a frame's block is named in errors. */
export function blockOf(index: number): string {
  return `frame ${index}'s LZ4 block`;
}

/** UnsupportedInputError unless the value declares exactly the frame's size. */
export function checkDeclaredSize(value: Buffer, frameBytes: number, what: string): void {
  if (value.length <= SIZE_PREFIX_BYTES || value.readUInt32LE(0) !== frameBytes) {
    throw new UnsupportedInputError(`${what} does not declare the frame's ${frameBytes} bytes`);
  }
}

/**
 * The error for a decompression lz4-napi refused: a block that would write past its declared size is
 * InputTooLargeError (a bomb), anything else corrupt input.
 */
export function decompressionError(
  message: string,
  frameBytes: number,
  what: string,
  cause?: unknown,
): Error {
  if (/output is too small/i.test(message)) {
    return new InputTooLargeError(
      `${what} decompresses to more than the ${frameBytes} bytes it declares`,
      frameBytes,
    );
  }
  return new UnsupportedInputError(
    `${what} is corrupt: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

/** A block that decompressed to another size than it declares. */
export function decodedSizeError(decoded: number, frameBytes: number, what: string): Error {
  return new UnsupportedInputError(`${what} decompresses to ${decoded} bytes; it declares ${frameBytes}`);
}
