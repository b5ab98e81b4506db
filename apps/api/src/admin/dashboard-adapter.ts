import { ExpressAdapter } from '@bull-board/express';
import { Logger } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import {
  REDIS_RETRY_AFTER_SECONDS,
  REDIS_UNAVAILABLE_MESSAGE,
  isRedisUnavailable,
  reasonPhrase,
} from '../common/http-errors.js';

type BoardErrorHandler = Parameters<ExpressAdapter['setErrorHandler']>[0];
type BoardErrorAnswer = ReturnType<BoardErrorHandler>;

/**
 * Bull Board's Express adapter with the API's error answers. The board's own handler answers any
 * failure with a 500 carrying the error's message (an ioredis message while Redis is away); here Redis
 * being away is a 503 with Retry-After, as on every other route, and an unexpected error a 500 that is
 * logged, not shown. The board's own 4xx answers (an unknown queue or job) stay as they are.
 */
export class DashboardAdapter extends ExpressAdapter {
  private readonly logger = new Logger('Dashboard');

  constructor() {
    super();
    // Ahead of the board's routes, which are added later.
    this.app.use(retryAfterOn503);
  }

  override setErrorHandler(handler: BoardErrorHandler): this {
    return super.setErrorHandler((error) => this.answer(error, handler));
  }

  private answer(error: Error & { statusCode?: number }, board: BoardErrorHandler): BoardErrorAnswer {
    if (isRedisUnavailable(error)) return errorAnswer(503, REDIS_UNAVAILABLE_MESSAGE);
    if (error.statusCode !== undefined && error.statusCode < 500) return board(error);
    this.logger.error(error.stack ?? error.message);
    return errorAnswer(500, 'internal error');
  }
}

function errorAnswer(status: 500 | 503, message: string): BoardErrorAnswer {
  const body = { statusCode: status, error: reasonPhrase(status), message };
  // The board's type lists only the statuses it uses itself; Express sends any.
  return { status: status as NonNullable<BoardErrorAnswer['status']>, body };
}

/**
 * The board's error answer is a status and a body, no headers: the Retry-After of a 503 is added as
 * the response's head is written.
 */
function retryAfterOn503(_request: Request, response: Response, next: NextFunction): void {
  const writeHead = response.writeHead;
  response.writeHead = function (this: Response, ...args: Parameters<Response['writeHead']>) {
    if (args[0] === 503 && !this.hasHeader('Retry-After')) {
      this.setHeader('Retry-After', String(REDIS_RETRY_AFTER_SECONDS));
    }
    return writeHead.apply(this, args);
  } as Response['writeHead'];
  next();
}
