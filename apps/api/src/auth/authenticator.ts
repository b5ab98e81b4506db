import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { FailedAttempts } from './failed-attempts.js';
import { KeyRing, OPEN_PRINCIPAL, type Principal } from './key-ring.js';

export type AuthVerdict =
  | { ok: true; principal: Principal }
  | {
      ok: false;
      status: 401 | 429;
      message: string;
      retryAfterSeconds?: number;
      /** A wrong key, or a refusal past the limit: in the per-address summary line. */
      counted: boolean;
    };

/** The client address a request came from (IPv4-mapped IPv6 addresses as plain IPv4). */
export function clientAddressOf(request: Pick<IncomingMessage, 'socket'> & { ip?: string }): string {
  const address = request.ip ?? request.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * The one place where a presented API key becomes a principal, for every surface that takes keys (the
 * Nest guard, the WebSocket upgrade, the dashboard's middleware and its login form), so that they all
 * count wrong keys against the same per-address limit.
 */
@Injectable()
export class Authenticator implements OnModuleDestroy {
  private readonly logger = new Logger('Auth');
  readonly keys: KeyRing;
  private readonly failures: FailedAttempts;

  constructor(@Inject(API_CONFIG) config: ApiConfig) {
    this.keys = new KeyRing(config.tenantKeys, config.operatorKeys);
    this.failures = new FailedAttempts({
      limit: config.authFailureLimit,
      windowSeconds: config.authFailureWindowSeconds,
      report: ({ address, failures, refused, windowSeconds }) =>
        this.logger.warn(
          `${failures} failed key attempts from ${address} in a ${windowSeconds} s window` +
            (refused > 0 ? `; ${refused} more refused with 429` : ''),
        ),
    });
  }

  get enabled(): boolean {
    return this.keys.enabled;
  }

  /** `key`: what the request presented (null for nothing); `address`: where it came from. */
  check(key: string | null, address: string): AuthVerdict {
    if (!this.keys.enabled) return { ok: true, principal: OPEN_PRINCIPAL };
    if (key === null)
      return {
        ok: false,
        status: 401,
        message: 'an API key is required: Authorization: Bearer <key>',
        counted: false,
      };
    const retryAfterSeconds = this.failures.retryAfter(address);
    if (retryAfterSeconds > 0) {
      return {
        ok: false,
        status: 429,
        message: `too many wrong API keys from this address; retry in ${retryAfterSeconds} s`,
        retryAfterSeconds,
        counted: true,
      };
    }
    const principal = this.keys.identify(key);
    if (principal) return { ok: true, principal };
    this.failures.fail(address);
    return { ok: false, status: 401, message: 'the API key is not valid', counted: true };
  }

  onModuleDestroy(): void {
    this.failures.close();
  }
}
