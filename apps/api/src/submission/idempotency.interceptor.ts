import {
  Injectable,
  UseInterceptors,
  applyDecorators,
  SetMetadata,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import type { Request } from 'express';
import { lastValueFrom, of, type Observable } from 'rxjs';
import { IdempotencyStore, idempotencyScope, requestFingerprint } from './idempotency.js';

/** Marks a route whose `Idempotency-Key` IdempotencyInterceptor keeps (AdmissionGuard lets repeats through). */
export const IDEMPOTENT_ROUTE = 'idempotent-route';

/**
 * `Idempotency-Key` on a route: the same key (per tenant) with the same request answers the first
 * response instead of running the handler again. The key is reserved before the body is read, so a
 * retry racing the first attempt gets 409 instead of a second job; a failed attempt releases it.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly store: IdempotencyStore) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const request = context.switchToHttp().getRequest<Request>();
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string') return next.handle();
    const fingerprint = requestFingerprint(request);
    const scope = idempotencyScope(request);
    const first = await this.store.begin<unknown>(scope, key, fingerprint);
    if (first) {
      // The body is not needed: read it off so that the connection can carry the next request.
      request.resume();
      return of(first);
    }
    const release = this.store.holdPending(scope, key);
    try {
      const answer = await lastValueFrom(next.handle());
      await this.store.complete(scope, key, fingerprint, answer);
      return of(answer);
    } catch (error) {
      await this.store.abandon(scope, key).catch(() => undefined);
      throw error;
    } finally {
      release();
    }
  }
}

/** The route honours `Idempotency-Key` (IdempotencyInterceptor). */
export function Idempotent(): MethodDecorator {
  return applyDecorators(SetMetadata(IDEMPOTENT_ROUTE, true), UseInterceptors(IdempotencyInterceptor));
}
