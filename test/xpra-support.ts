import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { PacketReader, encodePacket, type XpraValue } from '#xpra';
import { repoRoot } from '#scripts/lib/stack.js';

const execFileAsync = promisify(execFile);

/**
 * The Xpra interoperability kit (real clients built from source): `../shared/xpra` beside the repository
 * (CI), or XPRA_KIT. Without it the Xpra tests are skipped, and say so; with XPRA_KIT_REQUIRED=1
 * (`.ci/run`) a missing kit fails them instead.
 */
export function xpraKitDir(): string | null {
  const dir = resolve(process.env.XPRA_KIT || join(repoRoot(), '..', 'shared', 'xpra'));
  if (existsSync(join(dir, 'setup-client.sh'))) return dir;
  if (process.env.XPRA_KIT_REQUIRED === '1')
    throw new Error(`XPRA_KIT_REQUIRED=1 but the Xpra kit is not at ${dir} (set XPRA_KIT)`);
  console.warn(`SKIPPED: the Xpra interoperability tests need the kit at ${dir} (set XPRA_KIT)`);
  return null;
}

export interface XpraClients {
  kit: string;
  pythonPath: string;
}

/** Builds the real clients into .cache/xpra-client (idempotent, ~30 s the first time). */
export async function setupXpraClients(kit: string): Promise<XpraClients> {
  const { stdout } = await execFileAsync(
    join(kit, 'setup-client.sh'),
    [join(repoRoot(), '.cache', 'xpra-client')],
    {
      timeout: 600_000,
    },
  );
  return { kit, pythonPath: stdout.trim().split('\n').pop() ?? '' };
}

/** `xpra encode URI FILE --encoding=E`, run in `cwd` (where it writes its output). */
export async function xpraEncode(
  clients: XpraClients,
  uri: string,
  file: string,
  encoding: string,
  cwd: string,
  extra: string[] = [],
): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(
    '/usr/bin/python3',
    [join(clients.pythonPath, 'fs', 'bin', 'xpra'), 'encode', uri, file, `--encoding=${encoding}`, ...extra],
    { cwd, env: { ...process.env, PYTHONPATH: clients.pythonPath }, timeout: 120_000 },
  );
}

export interface RemoteClientResult {
  encoding: string;
  frames: number;
  ok: number;
  empty: number;
  types: Record<string, number>;
  encodings: string[];
  latency_ms: { p50: number; p99: number; max: number };
  error?: string;
}

/** `remote-client.py`: Xpra's own `remote` video encoder module, driven frame by frame. */
export async function remoteClient(clients: XpraClients, args: string[]): Promise<RemoteClientResult> {
  const result = await execFileAsync('/usr/bin/python3', [join(clients.kit, 'remote-client.py'), ...args], {
    env: { ...process.env, PYTHONPATH: clients.pythonPath },
    timeout: 300_000,
  }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    if (error.stdout?.trim()) return { stdout: error.stdout, stderr: error.stderr ?? '' };
    throw new Error(`remote-client.py failed: ${error.message}\n${error.stderr ?? ''}`);
  });
  const line = result.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as RemoteClientResult;
}

/** A raw client for what the real ones never send: bytes and packets of our choosing. */
export class RawXpraClient {
  private readonly reader = new PacketReader({ maxPacketBytes: 1 << 30, maxDecompressedBytes: 1 << 30 });
  private readonly packets: XpraValue[][] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      this.reader.push(data);
      void this.parse();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<RawXpraClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolveConnect, reject) => {
      socket.once('connect', resolveConnect);
      socket.once('error', reject);
    });
    return new RawXpraClient(socket);
  }

  private async parse(): Promise<void> {
    for (let packet = await this.reader.next(); packet; packet = await this.reader.next())
      this.packets.push(packet);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((wake) => wake());
  }

  send(packet: XpraValue[]): void {
    for (const part of encodePacket(packet)) this.socket.write(part);
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  hello(caps: Record<string, XpraValue> = {}): void {
    this.send(['hello', { version: '6.6', rencodeplus: { '': true }, lz4: { '': true }, ...caps }]);
  }

  /** The next packet of `type` (earlier ones of other types are kept), or null once the socket closed. */
  async next(type: string, timeoutMs = 30_000): Promise<XpraValue[] | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.packets.findIndex((packet) => packet[0] === type);
      if (index >= 0) return this.packets.splice(index, 1)[0];
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error(`no ${type} packet within ${timeoutMs} ms`);
      await new Promise<void>((wake) => {
        this.waiters.push(wake);
        setTimeout(wake, 200);
      });
    }
  }

  async untilClosed(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`the listener kept the connection open for ${timeoutMs} ms`);
      await new Promise((wake) => setTimeout(wake, 50));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** An 8-byte Xpra packet header. */
export function xpraHeader(flags: number, level: number, index: number, size: number): Buffer {
  const header = Buffer.from([0x50, flags, level, index, 0, 0, 0, 0]);
  header.writeUInt32BE(size >>> 0, 4);
  return header;
}

/** VP8/VP9 frames in an IVF file, for ffprobe. */
export function ivfFile(fourcc: 'VP80' | 'VP90', width: number, height: number, frames: Buffer[]): Buffer {
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4);
  header.writeUInt16LE(32, 6);
  header.write(fourcc, 8, 'latin1');
  header.writeUInt16LE(width, 12);
  header.writeUInt16LE(height, 14);
  header.writeUInt32LE(30, 16);
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(frames.length, 24);
  const parts: Buffer[] = [header];
  frames.forEach((frame, index) => {
    const frameHeader = Buffer.alloc(12);
    frameHeader.writeUInt32LE(frame.length, 0);
    frameHeader.writeBigUInt64LE(BigInt(index), 4);
    parts.push(frameHeader, frame);
  });
  return Buffer.concat(parts);
}
