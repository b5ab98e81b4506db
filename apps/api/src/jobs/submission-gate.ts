import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { principalOf } from '../auth/tenancy.js';
import { Admission, clientIdOf } from './admission.js';
import { IdempotencyStore, requestFingerprint } from './idempotency.js';
import { UploadLimits, type Upload, type UploadRequest } from './upload-limits.js';

/**
 * What every submission goes through: the per-client and cluster limits (429/503), the caps on bytes
 * in flight (its body, handed to `submit` as an Upload, is read within them), and the Idempotency-Key
 * (the same key and request again return the first answer, before admission, since a repeat adds no
 * work). Keys are the tenant's: any of its API keys (a rotated one too) gets the first answer, and
 * another tenant's same key is another request.
 */
@Injectable()
export class SubmissionGate {
  constructor(
    private readonly admission: Admission,
    private readonly idempotency: IdempotencyStore,
    private readonly uploads: UploadLimits,
  ) {}

  /**
   * `jobIdOf: null` for submissions that queue no job (opening a stream): no admission then.
   * `idempotency: false` for routes that keep their keys themselves (stream frames, atomically with
   * the batch).
   */
  async submit<T>(
    request: Request,
    jobIdOf: ((accepted: T) => string) | null,
    submit: (upload: Upload) => Promise<T>,
    options: { idempotency?: boolean } = {},
  ): Promise<T> {
    const client = clientIdOf(request);
    const admit = async (): Promise<T> => {
      if (jobIdOf) await this.admission.check(client);
      const upload = this.uploads.open(request as UploadRequest, client);
      try {
        const accepted = await submit(upload);
        if (jobIdOf) await this.admission.record(client, jobIdOf(accepted));
        return accepted;
      } finally {
        upload.close();
      }
    };
    const idempotencyKey = request.headers['idempotency-key'];
    if (typeof idempotencyKey !== 'string' || options.idempotency === false) return admit();
    const fingerprint = requestFingerprint(request);
    const scope = `tenant-${principalOf(request).tenant}`;
    const first = await this.idempotency.begin<T>(scope, idempotencyKey, fingerprint);
    if (first) {
      request.resume();
      return first;
    }
    const release = this.idempotency.holdPending(scope, idempotencyKey);
    try {
      const accepted = await admit();
      await this.idempotency.complete(scope, idempotencyKey, fingerprint, accepted);
      return accepted;
    } catch (error) {
      await this.idempotency.abandon(scope, idempotencyKey).catch(() => undefined);
      throw error;
    } finally {
      release();
    }
  }
}
