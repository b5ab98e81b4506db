import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { blockOf, checkDeclaredSize, decodedSizeError, decompressionError } from './lz4-block-checks.js';

/**
 * The thread's side: lz4-napi decompresses a stored value into a buffer of the thread's own, which is
 * copied into the caller's shared frame buffer. The fresh frame-sized buffer of each decompression is
 * garbage in this thread's small heap, not in the node's: on the event loop's heap those buffers cost
 * a mark-compact about every frame (external memory pressure; measured at 8-20 ms each for 1080p).
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { uncompressSync } = require(workerData.lz4);
parentPort.on('message', ({ id, value, target, offset, length }) => {
  let frame;
  try {
    frame = uncompressSync(value);
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) });
    return;
  }
  if (frame.length !== length) {
    parentPort.postMessage({ id, error: 'size', decoded: frame.length });
    return;
  }
  new Uint8Array(target, offset, length).set(frame);
  parentPort.postMessage({ id });
});`;

interface Reply {
  id: number;
  error?: string;
  decoded?: number;
}

interface Pending {
  resolve: () => void;
  reject: (error: Error) => void;
  what: string;
  frameBytes: number;
}

interface Thread {
  worker: Worker;
  pending: Set<number>;
}

/** A buffer a decoding thread can write into: a view of a SharedArrayBuffer. */
export function isSharedBuffer(buffer: Buffer): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && buffer.buffer instanceof SharedArrayBuffer;
}

/**
 * Decompresses stored `lz4-block` values (size prefix and block) on a few threads of their own, each
 * straight into a frame buffer the caller provides (SharedArrayBuffer-backed, from the node's pool):
 * the encoder reads a reused buffer, and the node's heap never sees a frame-sized allocation. The same
 * checks as decodeLz4BlockValue: a value that does not declare the frame's size, or decompresses to
 * another size, is UnsupportedInputError; a block that would write past its declared size fails inside
 * lz4-napi before it does (InputTooLargeError).
 */
export class Lz4DecodeThreads {
  private readonly threads: Thread[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly lz4Path = createRequire(import.meta.url).resolve('lz4-napi');
  private nextId = 1;
  private closed = false;

  constructor(private readonly count = 2) {
    for (let index = 0; index < count; index++) this.threads.push(this.spawn());
  }

  decodeInto(value: Buffer, target: Buffer, index: number): Promise<void> {
    const frameBytes = target.length;
    const what = blockOf(index);
    try {
      checkDeclaredSize(value, frameBytes, what);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (!isSharedBuffer(target)) return Promise.reject(new TypeError('the target must be a shared buffer'));
    if (this.closed) return Promise.reject(new Error('the LZ4 decoding threads are closed'));
    const id = this.nextId++;
    const thread = this.threads.reduce((least, candidate) =>
      candidate.pending.size < least.pending.size ? candidate : least,
    );
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, what, frameBytes });
      thread.pending.add(id);
      // A value that owns its memory moves to the thread; a view of a larger buffer (Node's own pool
      // among them, which must never be transferred) is copied into memory of its own first.
      const owns = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
      const sent = owns && !isSharedBuffer(value) ? value : ownCopy(value);
      thread.worker.postMessage(
        { id, value: sent, target: target.buffer, offset: target.byteOffset, length: frameBytes },
        [sent.buffer as ArrayBuffer],
      );
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  private spawn(): Thread {
    const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { lz4: this.lz4Path } });
    const thread: Thread = { worker, pending: new Set() };
    worker.on('message', (reply: Reply) => {
      thread.pending.delete(reply.id);
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (!reply.error) waiting.resolve();
      else waiting.reject(decodeError(waiting, reply));
    });
    const lost = (error: Error) => {
      for (const id of thread.pending) {
        this.pending.get(id)?.reject(error);
        this.pending.delete(id);
      }
      thread.pending.clear();
      const at = this.threads.indexOf(thread);
      if (at >= 0 && !this.closed) this.threads[at] = this.spawn();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`an LZ4 decoding thread exited (code ${code})`)));
    // After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
    return thread;
  }
}

function ownCopy(value: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(value.length);
  value.copy(copy);
  return copy;
}

function decodeError({ what, frameBytes }: Pending, reply: Reply): Error {
  if (reply.error === 'size') return decodedSizeError(reply.decoded ?? 0, frameBytes, what);
  return decompressionError(reply.error ?? 'unknown error', frameBytes, what);
}
