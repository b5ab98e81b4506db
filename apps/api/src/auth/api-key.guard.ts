import { createHash, timingSafeEqual } from 'node:crypto';
import {
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The configured keys as the digests `keyMatches` compares against. */
export function digestKeys(keys: string[]): Buffer[] {
  return keys.map(digest);
}

const PUBLIC_ROUTE = 'encoder:public-route';

/** A route open without a key even when API_KEYS is set (health probes, the dashboard's login form). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** Compares digests so that neither the length nor the content of a key leaks through timing. */
export function keyMatches(candidate: string, keys: Buffer[]): boolean {
  const presented = digest(candidate);
  let matched = false;
  for (const key of keys) matched = timingSafeEqual(presented, key) || matched;
  return matched;
}

export function presentedKey(request: Pick<Request, 'headers'>): string | null {
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer ')) return authorization.slice(7).trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : null;
}

/** With API_KEYS set, everything but /health/* needs `Authorization: Bearer <key>` (or `X-API-Key`). */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: Buffer[];

  constructor(
    @Inject(API_CONFIG) config: ApiConfig,
    private readonly reflector: Reflector,
  ) {
    this.keys = digestKeys(config.apiKeys);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.keys.length === 0) return true;
    const request = context.switchToHttp().getRequest<Request>();
    if (request.path.startsWith('/health/')) return true;
    const open = this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (open) return true;
    const key = presentedKey(request);
    if (key === null) throw new UnauthorizedException('an API key is required: Authorization: Bearer <key>');
    if (!keyMatches(key, this.keys)) throw new UnauthorizedException('the API key is not valid');
    return true;
  }
}
