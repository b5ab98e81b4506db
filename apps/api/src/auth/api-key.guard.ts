import {
  HttpException,
  Injectable,
  SetMetadata,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { countedElsewhere } from '../logging/http-logging.js';
import { Authenticator, clientAddressOf, type AuthVerdict } from './authenticator.js';
import { attachPrincipal } from './tenancy.js';

const PUBLIC_ROUTE = 'encoder:public-route';

/** A route open without a key even when API_KEYS is set (health probes, the dashboard's login form). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

export function presentedKey(request: Pick<Request, 'headers'>): string | null {
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer ')) return authorization.slice(7).trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : null;
}

/** A refused verdict as the exception the error filter answers with (429 with Retry-After). */
export class AuthRefusedException extends HttpException {
  readonly retryAfterSeconds?: number;

  constructor(verdict: Extract<AuthVerdict, { ok: false }>) {
    super(verdict.message, verdict.status);
    this.retryAfterSeconds = verdict.retryAfterSeconds;
  }
}

/**
 * With API_KEYS set, everything but /health/* needs `Authorization: Bearer <key>` (or `X-API-Key`).
 * The request's principal (its tenant, operator or not) is attached for the routes to check ownership.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly auth: Authenticator,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request>();
    const open =
      request.path.startsWith('/health/') ||
      this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [context.getHandler(), context.getClass()]);
    if (open) return true;
    const verdict = this.auth.check(presentedKey(request), clientAddressOf(request));
    if (!verdict.ok) {
      if (verdict.counted) countedElsewhere(context.switchToHttp().getResponse<object>());
      throw new AuthRefusedException(verdict);
    }
    attachPrincipal(request, verdict.principal);
    return true;
  }
}
