import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { REDIS } from '../cluster/tokens.js';

const READY_TIMEOUT_MS = 1000;

@Controller('health')
export class HealthController {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  @Get('live')
  live() {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready() {
    const ping = this.redis.ping();
    ping.catch(() => undefined);
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS).unref(),
    );
    try {
      await Promise.race([ping, timeout]);
      return { status: 'ok', redis: 'up' };
    } catch {
      throw new ServiceUnavailableException({ message: 'Redis is not reachable', redis: 'down' });
    }
  }
}
