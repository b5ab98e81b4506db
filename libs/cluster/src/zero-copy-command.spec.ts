import { Command } from 'ioredis';
import { PassThrough } from 'node:stream';
import { sendDirect } from './zero-copy-command.js';

/** Captures what a command writes, the way ioredis writes it: toWritable() output right after. */
function wireBytesOf(name: string, args: (string | number | Buffer | Buffer[])[]): Buffer {
  const socket = new PassThrough();
  const written: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => written.push(chunk));
  let captured: Command | undefined;
  const fakeRedis = {
    sendCommand: (command: Command) => {
      captured = command;
      return Promise.resolve('OK');
    },
  };
  void sendDirect(fakeRedis as never, name, args);
  const tail = captured!.toWritable(socket);
  // The command corks the socket until the next turn of the loop (holdUntilNextTurn): flush it now.
  while (socket.writableCorked > 0) socket.uncork();
  written.push(Buffer.isBuffer(tail) ? tail : Buffer.from(tail));
  return Buffer.concat(written);
}

describe('sendDirect', () => {
  it('writes the same RESP bytes as a plain command, for small and large binary arguments', () => {
    const small = Buffer.from([0, 0x80, 0xff, 0x0d, 0x0a, 0xc3]);
    const large = Buffer.alloc(100_000, 0xe9);
    for (const args of [
      ['k', small],
      ['k', large, 'EX', 60],
      ['k', 5, large, small],
    ] as (string | number | Buffer)[][]) {
      const plain = new Command(
        'set',
        args.map((arg) => (typeof arg === 'number' ? String(arg) : arg)),
      );
      const expected = plain.toWritable({});
      expect(
        wireBytesOf('set', args).equals(Buffer.isBuffer(expected) ? expected : Buffer.from(expected)),
      ).toBe(true);
    }
  });

  it('writes a value given in parts as one bulk string, the parts in order', () => {
    const parts = [Buffer.alloc(70_000, 1), Buffer.from([13, 10, 0]), Buffer.alloc(20_000, 2)];
    const plain = new Command('set', ['k', Buffer.concat(parts), 'EX', '60']).toWritable({});
    expect(
      wireBytesOf('set', ['k', parts, 'EX', 60]).equals(Buffer.isBuffer(plain) ? plain : Buffer.from(plain)),
    ).toBe(true);
  });
});
