import {
  Catch,
  Controller,
  Get,
  Inject,
  ServiceUnavailableException,
  UseFilters,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Response } from 'express';
import type { RedisClient } from '#cluster';
import { Public } from '../auth/api-key.guard.js';
import { EncodeQueue } from '../dispatch/encode-queue.js';
import { REDIS_RETRY_AFTER_SECONDS, isRedisUnavailable } from '../common/http-errors.js';
import { REDIS } from '../dispatch/tokens.js';

/** Redis must answer (and the queues accept a write) within this; a slower Redis is as good as none. */
export const READY_TIMEOUT_MS = 1000;

/** Terminus' own body on 503 (`{ status: 'error', info, error, details }`), not the API's error shape. */
@Catch(ServiceUnavailableException)
export class HealthCheckFailedFilter implements ExceptionFilter {
  catch(exception: ServiceUnavailableException, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    response.setHeader('Cache-Control', 'no-store');
    response.setHeader('Retry-After', String(REDIS_RETRY_AFTER_SECONDS));
    response.status(503).json(exception.getResponse());
  }
}

/** Probes for orchestrators: open without a key even when API_KEYS is set. */
@ApiTags('operations')
@Public()
@UseFilters(HealthCheckFailedFilter)
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly queues: EncodeQueue,
  ) {}

  /** The process serves HTTP; says nothing about Redis (a liveness probe must not restart on a Redis outage). */
  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process answers HTTP' })
  live() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary: 'Readiness: RedisClient answers PING and the encode queues accept a write, within 1 s',
  })
  @ApiOkResponse({
    description: '{ status: "ok", info: { redis: { status: "up" }, queues: { status: "up" } } }',
  })
  @ApiServiceUnavailableResponse({
    description: '{ status: "error", error: { redis: { status: "down", ... } } }',
  })
  ready() {
    return this.health.check([
      () =>
        this.indicators
          .check('redis')
          .attempt(async () => {
            await this.redis.ping().catch(plainRedisError);
          })
          .withTimeout(READY_TIMEOUT_MS),
      () =>
        this.indicators
          .check('queues')
          .attempt(async () => {
            await this.queues.probeWritable().catch(plainRedisError);
            return { queues: this.queues.all().map((queue) => queue.name) };
          })
          .withTimeout(READY_TIMEOUT_MS),
    ]);
  }
}

/** The probe is open without a key: it says that Redis is away, not what ioredis said about it. */
function plainRedisError(error: unknown): never {
  throw isRedisUnavailable(error) ? new Error('Redis is unavailable') : error;
}
