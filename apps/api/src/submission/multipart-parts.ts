import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { BadRequestException, HttpException, PayloadTooLargeException } from '@nestjs/common';
import busboy from 'busboy';

export interface MultipartLimits {
  /** The whole request body. */
  maxBodyBytes: number;
  /** One file part (an encoded image). */
  maxFileBytes: number;
  maxFiles: number;
  maxFields: number;
  /** One field's value. */
  maxFieldBytes: number;
  /**
   * Called as each file part starts; what it returns is called with each piece of the part and its
   * length so far, before the part is kept whole. Either may throw (an HttpException) to refuse the
   * request there and then, from the part's name or its first bytes.
   */
  inspectFile?: (name: string, filename: string) => (piece: Buffer, received: number) => void;
}

/** The request body's bytes as they arrive: counted (may throw), and a failure when it stalls. */
export interface BodyWatch {
  count(bytes: number): void;
  onStall(listener: (error: HttpException) => void): () => void;
}

export type MultipartPart =
  | { kind: 'field'; name: string; value: string }
  | { kind: 'file'; name: string; filename: string; mimeType: string; data: Buffer };

const MAX_FIELD_NAME_BYTES = 100;

function malformed(error: unknown): HttpException {
  if (error instanceof HttpException) return error;
  return new BadRequestException(`malformed multipart/form-data body: ${(error as Error).message}`);
}

/**
 * The parts of a multipart/form-data request, in the order they were sent, parsed by busboy as the
 * body streams in. One part at a time: a file part is read whole (at most `maxFileBytes`, and what
 * `inspectFile` lets through as it arrives) and yielded, and the request is not read further until the
 * consumer asks for the next part, so the API holds at most one encoded image of a request (plus
 * whatever the consumer keeps). Limits end the upload with 413, a malformed body with 400, a `watch`
 * that throws or stalls with its error; leaving the loop early stops reading the request.
 */
export async function* multipartParts(
  request: Readable & { headers: IncomingHttpHeaders },
  limits: MultipartLimits,
  watch?: BodyWatch,
): AsyncGenerator<MultipartPart> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: request.headers,
      limits: {
        fileSize: limits.maxFileBytes,
        files: limits.maxFiles,
        fields: limits.maxFields,
        fieldSize: limits.maxFieldBytes,
        fieldNameSize: MAX_FIELD_NAME_BYTES,
        parts: limits.maxFiles + limits.maxFields,
      },
    });
  } catch (error) {
    throw malformed(error);
  }

  type Pending =
    | { kind: 'field'; name: string; value: string }
    | {
        kind: 'file';
        name: string;
        filename: string;
        mimeType: string;
        stream: Readable & { truncated?: boolean };
      };
  const queue: Pending[] = [];
  let finished = false;
  let failure: HttpException | undefined;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  const fail = (error: unknown) => {
    failure ??= malformed(error);
    // Also ends a file stream that is being read, with this error.
    parser.destroy(failure);
    notify();
  };

  parser.on('field', (name, value, info) => {
    if (info.nameTruncated) return fail(new BadRequestException('a form field name is too long'));
    if (info.valueTruncated) {
      return fail(
        new PayloadTooLargeException(`form field ${name} is longer than ${limits.maxFieldBytes} bytes`),
      );
    }
    queue.push({ kind: 'field', name, value });
    notify();
  });
  parser.on('file', (name, stream, info) => {
    // busboy destroys a file stream it cannot finish with the parse error; that error is reported by
    // reading the stream (or by the parser's own 'error'), so it must not go unhandled while queued.
    stream.on('error', () => undefined);
    queue.push({ kind: 'file', name, filename: info.filename ?? '', mimeType: info.mimeType, stream });
    notify();
  });
  parser.on('filesLimit', () =>
    fail(new PayloadTooLargeException(`more than ${limits.maxFiles} frame parts; that is the limit per job`)),
  );
  parser.on('fieldsLimit', () =>
    fail(new PayloadTooLargeException(`more than ${limits.maxFields} form fields`)),
  );
  parser.on('partsLimit', () =>
    fail(new PayloadTooLargeException(`more than ${limits.maxFiles + limits.maxFields} parts`)),
  );
  parser.on('error', (error) => {
    failure ??= malformed(error);
    notify();
  });
  parser.on('close', () => {
    finished = true;
    notify();
  });

  let received = 0;
  const stopReading = (error: unknown) => {
    request.unpipe(parser);
    fail(error);
  };
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received > limits.maxBodyBytes) {
      return stopReading(
        new PayloadTooLargeException(`the body is larger than the limit of ${limits.maxBodyBytes} bytes`),
      );
    }
    try {
      watch?.count(chunk.length);
    } catch (error) {
      stopReading(error);
    }
  };
  const stopWatching = watch?.onStall(stopReading);
  const aborted = () => fail(new BadRequestException('the request was aborted before its body was complete'));
  request.on('data', count);
  request.once('aborted', aborted);
  request.once('error', aborted);
  request.pipe(parser);

  try {
    for (;;) {
      if (failure) throw failure;
      const part = queue.shift();
      if (part?.kind === 'field') {
        yield part;
      } else if (part) {
        const inspect = limits.inspectFile?.(part.name, part.filename);
        const data = await readFile(part.stream, part.name, limits.maxFileBytes, inspect);
        if (failure) throw failure;
        yield { kind: 'file', name: part.name, filename: part.filename, mimeType: part.mimeType, data };
      } else if (finished) {
        return;
      } else {
        await new Promise<void>((resolve) => (wake = resolve));
      }
    }
  } finally {
    stopWatching?.();
    request.off('data', count);
    request.off('aborted', aborted);
    request.off('error', aborted);
    request.unpipe(parser);
    for (const pending of queue) if (pending.kind === 'file') pending.stream.resume();
  }
}

async function readFile(
  stream: Readable & { truncated?: boolean },
  name: string,
  maxBytes: number,
  inspect?: (piece: Buffer, received: number) => void,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      inspect?.(chunk, length);
    }
  } catch (error) {
    throw malformed(error);
  }
  if (stream.truncated) {
    throw new PayloadTooLargeException(`file part ${name} is larger than the limit of ${maxBytes} bytes`);
  }
  return Buffer.concat(chunks, length);
}
