/**
 * Typed errors of the codecs layer. Each carries a message meant for the API's caller and the HTTP
 * status that fits it, so the API can map them without string matching.
 */
export abstract class CodecError extends Error {
  abstract readonly httpStatus: number;
  /** Bad input is never worth a retry; an encoder crash may be. */
  abstract readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The input does not fit: not an image, wrong byte length, truncated or corrupt data, impossible size. */
export class UnsupportedInputError extends CodecError {
  readonly httpStatus = 400;
  readonly retryable = false;
}

/** The input exceeds a limit: too many pixels, or more decompressed bytes than declared. */
export class InputTooLargeError extends CodecError {
  readonly httpStatus = 413;
  readonly retryable = false;

  constructor(
    message: string,
    readonly limit: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** This codec or ffmpeg encoder is not available on this node. */
export class UnsupportedCodecError extends CodecError {
  readonly httpStatus = 422;
  readonly retryable = false;
}

/** ffmpeg failed; the message holds the command line and the tail of its stderr. */
export class EncoderFailedError extends CodecError {
  readonly httpStatus = 500;
  readonly retryable = true;

  constructor(
    message: string,
    readonly commandLine: string,
    readonly stderrTail: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The caller aborted the encode (job cancelled, node draining, probe timeout). */
export class EncodeAbortedError extends CodecError {
  readonly httpStatus = 499;
  readonly retryable = true;
}

export function isCodecError(error: unknown): error is CodecError {
  return error instanceof CodecError;
}
