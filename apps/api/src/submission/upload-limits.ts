import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { Inject, Injectable, PayloadTooLargeException, RequestTimeoutException } from '@nestjs/common';
import { RetryLaterException } from '../common/http-errors.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { TooManyJobsException } from './admission.js';

/** 408: the client stopped sending its body; the connection is closed after the answer. */
export class BodyStalledException extends RequestTimeoutException {
  constructor(idleMs: number) {
    super(
      `the body stopped arriving: nothing was received for ${idleMs} ms; nothing was stored, send it again`,
    );
  }
}

/** A share of a byte budget that can grow and is given back once. */
export interface Reservation {
  readonly bytes: number;
  /** Takes more (or gives some back) so that the reservation is `bytes`; throws 429/503 when over. */
  resize(bytes: number): void;
  release(): void;
}

export type UploadRequest = Readable & { headers: IncomingHttpHeaders; socket: Socket; complete: boolean };

/**
 * What uploads in progress may take from this API, so that clients who declare big bodies and send
 * them slowly (or not at all) cannot make it, or Redis, hold much: bytes in flight per client and in
 * total (an upload reserves its Content-Length before its body is read, or what it sent so far when
 * it has none), the bytes that uploaded images take while they are received and decoded, and how long
 * a body may go silent.
 */
@Injectable()
export class UploadLimits {
  private total = 0;
  private readonly perClient = new Map<string, number>();
  private images = 0;

  constructor(@Inject(API_CONFIG) private readonly config: ApiConfig) {}

  /**
   * Reserves the upload's declared length for `clientId` before its body is read: 413 if no upload may
   * be that long (waiting would not help), 429/503 if it does not fit now.
   */
  open(request: UploadRequest, clientId: string): Upload {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > this.config.maxBodyBytes) {
      const encoding = request.headers['content-encoding']?.trim().toLowerCase();
      const body = encoding && encoding !== 'identity' ? `the ${encoding} body` : 'the body';
      throw new PayloadTooLargeException(
        `${body} is ${declared} bytes; the limit is ${this.config.maxBodyBytes}`,
      );
    }
    const reservation = this.inFlight(clientId);
    reservation.resize(Number.isSafeInteger(declared) && declared > 0 ? declared : 0);
    return new Upload(request, reservation, this.config.uploadIdleTimeoutMs);
  }

  /**
   * Bytes of uploaded images held in memory (received and decoded), and of raw frames held to be
   * compressed (`frameBuffers`), for all requests together.
   */
  imageBuffer(): Reservation {
    const limit = this.config.imageBytesInFlight;
    return this.reservation((delta) => {
      if (delta > 0 && this.images + delta > limit) {
        throw new RetryLaterException(
          `the API is decoding ${this.images} bytes of uploaded images, the limit is ${limit}; retry later`,
          2,
        );
      }
      this.images += delta;
    });
  }

  /**
   * `bytes` of the same budget as images, for frames held whole to be compressed before they are
   * stored; null when the budget has no room now (the frames are then stored as they are sent).
   */
  frameBuffers(bytes: number): Reservation | null {
    if (this.images + bytes > this.config.imageBytesInFlight) return null;
    const reservation = this.imageBuffer();
    reservation.resize(bytes);
    return reservation;
  }

  private inFlight(clientId: string): Reservation {
    const { uploadBytesInFlight: totalLimit, uploadBytesPerClient: clientLimit } = this.config;
    return this.reservation((delta) => {
      const own = this.perClient.get(clientId) ?? 0;
      if (delta > 0 && own + delta > clientLimit) {
        throw new TooManyJobsException(
          `this client is already sending ${own} bytes of uploads and this one needs ${delta} more; the limit per client is ${clientLimit}: retry when those are through`,
          2,
        );
      }
      if (delta > 0 && this.total + delta > totalLimit) {
        throw new RetryLaterException(
          `the API is receiving ${this.total} bytes of uploads, the limit is ${totalLimit}; retry later`,
          2,
        );
      }
      this.total += delta;
      if (own + delta === 0) this.perClient.delete(clientId);
      else this.perClient.set(clientId, own + delta);
    });
  }

  private reservation(apply: (delta: number) => void): Reservation {
    let bytes = 0;
    let released = false;
    return {
      get bytes() {
        return bytes;
      },
      resize(next: number) {
        if (released) return;
        apply(next - bytes);
        bytes = next;
      },
      release() {
        if (released) return;
        apply(-bytes);
        bytes = 0;
        released = true;
      },
    };
  }
}

/** How often a body's progress is looked at, at most (the idle timeout's granularity). */
const STALL_CHECK_MS = 1000;

/**
 * The body of one submission, read within the limits: its bytes count against its reservation (which
 * grows past the declared length, if there is none), and it fails with a 408 once the client has sent
 * nothing for `idleMs` while the API was waiting for it. Time the API spends on its own work (Redis
 * pushing back, an image decoding) does not count: then the request holds unread bytes.
 */
export class Upload {
  private received = 0;
  private stalled: BodyStalledException | null = null;
  private readonly stallListeners = new Set<(error: BodyStalledException) => void>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly request: UploadRequest,
    private readonly reservation: Reservation,
    idleMs: number,
  ) {
    let lastBytes = request.socket?.bytesRead ?? 0;
    let lastProgress = Date.now();
    this.timer = setInterval(
      () => {
        const bytes = request.socket?.bytesRead ?? 0;
        const now = Date.now();
        if (bytes !== lastBytes || request.readableLength > 0 || request.complete) {
          lastBytes = bytes;
          lastProgress = now;
        } else if (now - lastProgress >= idleMs) {
          clearInterval(this.timer);
          this.stalled = new BodyStalledException(idleMs);
          for (const listener of this.stallListeners) listener(this.stalled);
          this.stallListeners.clear();
        }
      },
      Math.min(STALL_CHECK_MS, Math.max(10, Math.floor(idleMs / 4))),
    );
    this.timer.unref();
  }

  /** Calls `listener` once when the body stalls (at once if it has); returns what stops listening. */
  onStall(listener: (error: BodyStalledException) => void): () => void {
    if (this.stalled) {
      listener(this.stalled);
      return () => undefined;
    }
    this.stallListeners.add(listener);
    return () => this.stallListeners.delete(listener);
  }

  /** Counts body bytes as they are consumed: 429/503 when an upload of undeclared length outgrows the caps. */
  count(bytes: number): void {
    this.received += bytes;
    if (this.received > this.reservation.bytes) this.reservation.resize(this.received);
  }

  /**
   * The body's chunks, counted, failing with the 408 when it stalls. The request is not destroyed when
   * the consumer stops early (a body over its length): the error filter then reads off the rest, so that
   * the client gets its 4xx instead of a reset connection.
   */
  async *chunks(): AsyncGenerator<Buffer> {
    const iterator = this.request.iterator({ destroyOnReturn: false }) as AsyncIterableIterator<Buffer>;
    try {
      for (;;) {
        const next = await new Promise<IteratorResult<Buffer>>((resolve, reject) => {
          const stop = this.onStall(reject);
          iterator.next().then(
            (result) => {
              stop();
              resolve(result);
            },
            (error: unknown) => {
              stop();
              reject(error as Error);
            },
          );
        });
        if (next.done) return;
        this.count(next.value.length);
        yield next.value;
      }
    } finally {
      void iterator.return?.()?.catch(() => undefined);
    }
  }

  /** Gives the reservation back and stops watching; the body is done with (stored, or refused). */
  close(): void {
    clearInterval(this.timer);
    this.stallListeners.clear();
    this.reservation.release();
  }
}
