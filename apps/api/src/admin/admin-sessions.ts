import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#cluster';
import { KeySpace } from '#cluster';
import { REDIS } from '../dispatch/tokens.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { sessionIdOf, signSession } from './admin-session.js';

/**
 * Dashboard sessions, revocable: the cookie is a signed session id, honoured only while the session's
 * Redis key exists. Logging out deletes the key, so the same cookie, replayed, is refused; the key
 * expires with the session, and every API process sees the same sessions.
 */
@Injectable()
export class AdminSessions {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  /** Opens a session; returns the cookie value. */
  async open(now = Date.now()): Promise<string> {
    const { cookieSecret, sessionTtlSeconds } = this.config.admin;
    const id = randomBytes(18).toString('base64url');
    await this.redis.set(this.keys.adminSession(id), String(now), 'EX', sessionTtlSeconds);
    return signSession(cookieSecret, now, sessionTtlSeconds, id);
  }

  /** True for a cookie this service signed, not expired, whose session was not ended. */
  async valid(token: string | undefined, now = Date.now()): Promise<boolean> {
    const id = sessionIdOf(this.config.admin.cookieSecret, token, now);
    return id !== null && (await this.redis.exists(this.keys.adminSession(id))) === 1;
  }

  /** Ends the session of a cookie (a forged or expired one ends nothing). */
  async end(token: string | undefined, now = Date.now()): Promise<void> {
    const id = sessionIdOf(this.config.admin.cookieSecret, token, now);
    if (id !== null) await this.redis.del(this.keys.adminSession(id));
  }
}
