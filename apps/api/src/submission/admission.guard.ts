import {
  Injectable,
  SetMetadata,
  UseGuards,
  UseInterceptors,
  applyDecorators,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { from, mergeMap, type Observable } from 'rxjs';
import { Admission, clientIdOf } from './admission.js';
import { IdempotencyStore, idempotencyScope } from './idempotency.js';
import { IDEMPOTENT_ROUTE } from './idempotency.interceptor.js';

const ADMITS_WORK = 'admits-work';

/**
 * Admission before a byte of the body is read (Admission.check: 503 when the cluster is saturated,
 * 429 when the client has too many unfinished jobs). A repeat of an `Idempotency-Key` already in use
 * on an idempotent route adds no work: it goes through, to be answered by IdempotencyInterceptor
 * (guards run before interceptors). Should the first attempt fail and free its key in between, the
 * repeat then runs unadmitted: one job past the limits at most, never a second job for the key.
 */
@Injectable()
export class AdmissionGuard implements CanActivate {
  constructor(
    private readonly admission: Admission,
    private readonly idempotency: IdempotencyStore,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<Request>();
    const key = request.headers['idempotency-key'];
    const idempotent = this.reflector.get<boolean | undefined>(IDEMPOTENT_ROUTE, context.getHandler());
    if (idempotent && typeof key === 'string' && (await this.idempotency.has(idempotencyScope(request), key)))
      return true;
    await this.admission.check(clientIdOf(request));
    return true;
  }
}

/** Once a route that admits work has queued its job, the job counts against its client until it ends. */
@Injectable()
export class AdmittedJobRecorder implements NestInterceptor {
  constructor(
    private readonly admission: Admission,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const jobIdOf = this.reflector.get<((accepted: unknown) => string) | undefined>(
      ADMITS_WORK,
      context.getHandler(),
    );
    if (!jobIdOf) return next.handle();
    const client = clientIdOf(context.switchToHttp().getRequest<Request>());
    return next
      .handle()
      .pipe(
        mergeMap((accepted) => from(this.admission.record(client, jobIdOf(accepted)).then(() => accepted))),
      );
  }
}

/**
 * The route queues work: AdmissionGuard admits it, and the job (`jobIdOf` its answer) is recorded
 * against its client. Put it above `@Idempotent()`, so that a job is recorded before its key is
 * answered.
 */
export function AdmitsWork<T>(jobIdOf: (accepted: T) => string): MethodDecorator {
  return applyDecorators(
    SetMetadata(ADMITS_WORK, jobIdOf),
    UseGuards(AdmissionGuard),
    UseInterceptors(AdmittedJobRecorder),
  );
}
