import {
  ArgumentsHost,
  BadRequestException,
  Catch,
  HttpException,
  HttpStatus,
  Logger,
  ServiceUnavailableException,
  type ExceptionFilter,
  type ValidationError,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { isCodecError, type CodecError } from '#codecs/errors.js';

/** 503 with `Retry-After`: the client should come back, nothing was stored. */
export class RetryLaterException extends ServiceUnavailableException {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/**
 * A codec-library error (bad or oversized input, found on the API: an uploaded image that is not one,
 * a decompression bomb) as the HTTP answer its `httpStatus` says, with `context` (which part of the
 * request) in front of its message.
 */
export function httpErrorFromCodec(error: CodecError, context?: string): HttpException {
  const message = context ? `${context}: ${error.message}` : error.message;
  return new HttpException({ message }, error.httpStatus, { cause: error });
}

export function flattenValidationErrors(errors: ValidationError[], parent = ''): string[] {
  return errors.flatMap((error) => {
    const path = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {});
    return [...own, ...flattenValidationErrors(error.children ?? [], path)];
  });
}

export function validationExceptionFactory(errors: ValidationError[]): BadRequestException {
  return new BadRequestException(flattenValidationErrors(errors).join('; '));
}

const REDIS_DOWN = [
  /Stream isn't writeable/,
  /Connection is closed/,
  /ECONNREFUSED/,
  /Reached the max retries/,
  /Redis not reachable/,
];

export function isRedisUnavailable(error: unknown): boolean {
  return error instanceof Error && REDIS_DOWN.some((pattern) => pattern.test(error.message));
}

/** What every surface answers while Redis is away: 503, this Retry-After, and this message. */
export const REDIS_RETRY_AFTER_SECONDS = 2;
export const REDIS_UNAVAILABLE_MESSAGE = 'Redis is unavailable; nothing was stored, retry later';

/**
 * Every error leaves as `{ statusCode, error, message }` with a message that says what to fix. Redis
 * being away is a 503 with Retry-After; anything unexpected is a 500 that is logged, not leaked.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    let status: number = HttpStatus.INTERNAL_SERVER_ERROR;
    let message = 'internal error';
    let extra: Record<string, unknown> = {};
    if (exception instanceof HttpException) {
      status = exception.getStatus();
      const body = exception.getResponse();
      if (typeof body === 'string') message = body;
      else {
        const { message: raw, statusCode: _code, error: _error, ...rest } = body as Record<string, unknown>;
        message = Array.isArray(raw) ? raw.join('; ') : String(raw ?? exception.message);
        extra = rest;
      }
      // Nest hands body-parser's errors over as HttpExceptions that carry its terse message.
      if (isBodyParserError(exception.cause)) message = bodyParserMessage(exception.cause);
      const retryAfter = (exception as { retryAfterSeconds?: unknown }).retryAfterSeconds;
      if (typeof retryAfter === 'number') response.setHeader('Retry-After', String(retryAfter));
    } else if (isCodecError(exception) && exception.httpStatus < 500) {
      status = exception.httpStatus;
      message = exception.message;
    } else if (isRedisUnavailable(exception)) {
      status = HttpStatus.SERVICE_UNAVAILABLE;
      message = REDIS_UNAVAILABLE_MESSAGE;
      response.setHeader('Retry-After', String(REDIS_RETRY_AFTER_SECONDS));
    } else if (isBodyParserError(exception)) {
      status = exception.status;
      message = bodyParserMessage(exception);
    } else {
      this.logger.error(
        exception instanceof Error ? (exception.stack ?? exception.message) : String(exception),
      );
    }
    if (response.headersSent) {
      response.destroy();
      return;
    }
    // A body that stalled is not read off: the connection goes once the answer is out.
    if (status === HttpStatus.REQUEST_TIMEOUT) response.setHeader('Connection', 'close');
    else discardUnreadBody(host.switchToHttp().getRequest<Request>());
    response.status(status).json({ statusCode: status, error: reasonPhrase(status), message, ...extra });
  }
}

/** Body bytes an answered request may still send before its connection is cut. */
const MAX_DISCARDED_BODY_BYTES = 16 * 1024 * 1024;

/**
 * An error answered before the body was read (413 on the declared length, 400 on parameters): closing
 * the connection at once would reset it under a client still sending, which then loses the answer
 * (EPIPE). So the rest of the body is read and dropped, up to a bound past which the connection is cut.
 * No `Connection: close` either: Node would close the socket as soon as the answer is written, with the
 * client's bytes still arriving, and the kernel answers those with a reset.
 */
function discardUnreadBody(request: Request): void {
  if (request.complete || request.destroyed) return;
  let discarded = 0;
  request.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > MAX_DISCARDED_BODY_BYTES) request.socket.destroy();
  });
  request.resume();
}

function isBodyParserError(error: unknown): error is Error & { status: number; type: string } {
  return (
    error instanceof Error &&
    typeof (error as { status?: unknown }).status === 'number' &&
    typeof (error as { type?: unknown }).type === 'string'
  );
}

function bodyParserMessage(error: Error & { type: string; limit?: unknown }): string {
  if (error.type === 'entity.parse.failed') return `malformed request body: ${error.message}`;
  if (error.type === 'entity.too.large' && typeof error.limit === 'number') {
    return `the request body is larger than the limit of ${error.limit} bytes for this content type`;
  }
  return error.message;
}

const PHRASES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function reasonPhrase(status: number): string {
  return PHRASES[status] ?? 'Error';
}
