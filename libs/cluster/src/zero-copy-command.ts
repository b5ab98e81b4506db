import type { Socket } from 'node:net';
import { Command } from 'ioredis';
import { holdUntilNextTurn } from './turn-batched-writes.js';
import type { RedisClient } from './redis-connection.js';

/** Payloads at least this big go to the socket as they are; ioredis would copy them into one new buffer. */
const DIRECT_WRITE_MIN_BYTES = 16 * 1024;

/**
 * A command whose large Buffer arguments are written straight to the socket instead of being
 * concatenated with the RESP header into a fresh buffer (what ioredis does for every Buffer command).
 * For 8 MB frames that fresh allocation, not the copy, dominates: page faults on this class of VM cost
 * more than the memcpy. ioredis writes `toWritable()`'s return value right after calling it, so
 * writing the head and the payloads here and returning the tail keeps the command contiguous.
 */
class DirectWriteCommand extends Command {
  constructor(
    name: string,
    args: (string | Buffer)[],
    /** Arguments given in parts (by position): each is one bulk string, its parts written in order. */
    private readonly parts: Map<number, Buffer[]>,
  ) {
    super(name, args);
  }

  override toWritable(socket: object): string | Buffer {
    const writable = socket as Socket;
    if (typeof writable.write !== 'function') {
      for (const [index, parts] of this.parts) this.args[index] = Buffer.concat(parts);
      return super.toWritable(socket);
    }
    holdUntilNextTurn(writable);
    let pending: Buffer[] = [
      Buffer.from(`*${this.args.length + 1}\r\n$${Buffer.byteLength(this.name)}\r\n${this.name}\r\n`),
    ];
    this.args.forEach((arg, index) => {
      const pieces = this.parts.get(index) ?? [Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg))];
      const length = pieces.reduce((sum, piece) => sum + piece.length, 0);
      pending.push(Buffer.from(`$${length}\r\n`));
      for (const bytes of pieces) {
        if (bytes.length >= DIRECT_WRITE_MIN_BYTES) {
          writable.write(Buffer.concat(pending));
          writable.write(bytes);
          pending = [];
        } else {
          pending.push(bytes);
        }
      }
      pending.push(Buffer.from('\r\n'));
    });
    return Buffer.concat(pending);
  }
}

/**
 * Sends a command whose large binary arguments are not copied; resolves with the reply. An argument
 * given as a list of buffers is one value, its parts written one after the other.
 */
export function sendDirect(
  redis: RedisClient,
  name: string,
  args: (string | number | Buffer | Buffer[])[],
): Promise<unknown> {
  const parts = new Map<number, Buffer[]>();
  const flat = args.map((arg, index) => {
    if (typeof arg === 'number') return String(arg);
    if (!Array.isArray(arg)) return arg;
    parts.set(index, arg);
    // A placeholder that keeps the command in buffer mode; toWritable writes the parts instead.
    return Buffer.alloc(0);
  });
  return redis.sendCommand(new DirectWriteCommand(name, flat, parts)) as Promise<unknown>;
}
