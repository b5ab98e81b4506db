import type { Socket } from 'node:net';
import { Command } from 'ioredis';
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
  override toWritable(socket: object): string | Buffer {
    const writable = socket as Socket;
    if (typeof writable.write !== 'function') return super.toWritable(socket);
    let pending: Buffer[] = [
      Buffer.from(`*${this.args.length + 1}\r\n$${Buffer.byteLength(this.name)}\r\n${this.name}\r\n`),
    ];
    for (const arg of this.args) {
      const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
      if (bytes.length >= DIRECT_WRITE_MIN_BYTES) {
        pending.push(Buffer.from(`$${bytes.length}\r\n`));
        writable.write(Buffer.concat(pending));
        writable.write(bytes);
        pending = [Buffer.from('\r\n')];
      } else {
        pending.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
      }
    }
    return Buffer.concat(pending);
  }
}

/** Sends a command whose large binary arguments are not copied; resolves with the reply. */
export function sendDirect(
  redis: RedisClient,
  name: string,
  args: (string | number | Buffer)[],
): Promise<unknown> {
  const command = new DirectWriteCommand(
    name,
    args.map((arg) => (typeof arg === 'number' ? String(arg) : arg)),
  );
  return redis.sendCommand(command) as Promise<unknown>;
}
