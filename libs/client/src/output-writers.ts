import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { StreamMode } from '#contracts';
import { ivfFileHeader, ivfFrameHeader, type IvfCodec } from './ivf.js';

/** What the writers need to know of a stream. */
export interface OutputTarget {
  mode: StreamMode;
  width: number;
  height: number;
  fps: number;
}

/** The fields of an output event the writers use. */
export interface OutputRef {
  seq: number;
  index: number;
  frame?: number;
  contentType: string;
}

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/png': 'png',
  'image/avif': 'avif',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
  'video/x-matroska': 'mkv',
  'video/ivf': 'ivf',
  'video/x-ivf': 'ivf',
  'video/h264': 'h264',
  'video/h265': 'h265',
  'video/hevc': 'h265',
  'video/vp8': 'ivf',
  'video/vp9': 'ivf',
  'video/av1': 'ivf',
};

/** Live packet content types that are appended to one elementary stream file. */
const ANNEX_B: Record<string, string> = { 'video/h264': 'stream.h264', 'video/h265': 'stream.h265' };
const IVF: Record<string, IvfCodec> = { 'video/vp8': 'vp8', 'video/vp9': 'vp9', 'video/av1': 'av1' };

/** File extension of a content type (parameters ignored); `bin` when unknown. */
export function extensionFor(contentType: string): string {
  return EXTENSIONS[contentType.split(';')[0].trim().toLowerCase()] ?? 'bin';
}

function bareType(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}

export function pad6(n: number): string {
  return String(n).padStart(6, '0');
}

/** Where an output goes. */
export type OutputPlacement =
  | { kind: 'annex-b'; file: string }
  | { kind: 'ivf'; file: string; codec: IvfCodec }
  | { kind: 'file'; file: string };

/**
 * - live H.264/HEVC packets: appended to `stream.h264` / `stream.h265` (Annex B access units,
 *   concatenated: a playable elementary stream);
 * - live VP8/VP9/AV1 packets: `stream.ivf` (IVF file header, then a frame header before each packet);
 * - images: `frame-000000.jpg` etc. by stream-wide frame number;
 * - anything else (a batch-mode video segment): `batch-000000.mp4|webm` by batch seq
 *   (`batch-000000-1.ext` for a second output of the same batch).
 */
export function placeOutput(target: Pick<OutputTarget, 'mode'>, output: OutputRef): OutputPlacement {
  const type = bareType(output.contentType);
  if (target.mode === 'live' && ANNEX_B[type]) return { kind: 'annex-b', file: ANNEX_B[type] };
  if (target.mode === 'live' && IVF[type]) return { kind: 'ivf', file: 'stream.ivf', codec: IVF[type] };
  const extension = extensionFor(type);
  if (type.startsWith('image/')) {
    const name =
      output.frame !== undefined
        ? `frame-${pad6(output.frame)}`
        : `batch-${pad6(output.seq)}-${output.index}`;
    return { kind: 'file', file: `${name}.${extension}` };
  }
  const suffix = output.index === 0 ? '' : `-${output.index}`;
  return { kind: 'file', file: `batch-${pad6(output.seq)}${suffix}.${extension}` };
}

/** The name of a one-off job's output: images by index (`frame-000000.jpg`), others `output-0.mp4`. */
export function jobOutputName(contentType: string, index: number): string {
  const type = bareType(contentType);
  return type.startsWith('image/')
    ? `frame-${pad6(index)}.${extensionFor(type)}`
    : `output-${index}.${extensionFor(type)}`;
}

interface OpenStream {
  handle: FileHandle;
  position: number;
  ivf?: { codec: IvfCodec; frames: number };
}

/**
 * Writes a stream's outputs under `dir` as they are delivered (call write() in delivery order; calls
 * are serialised). close() finishes the files (the IVF header gets its frame count).
 */
export class OutputWriter {
  readonly files: string[] = [];
  bytes = 0;
  private readonly streams = new Map<string, OpenStream>();
  private chain: Promise<void> = Promise.resolve();
  private ready: Promise<unknown> | undefined;

  constructor(
    readonly dir: string,
    private readonly target: OutputTarget,
  ) {}

  write(output: OutputRef, data: Buffer): Promise<void> {
    const run = this.chain.then(() => this.writeNow(output, data));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async writeNow(output: OutputRef, data: Buffer): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true });
    await this.ready;
    const placement = placeOutput(this.target, output);
    this.bytes += data.length;
    if (placement.kind === 'file') {
      const path = join(this.dir, placement.file);
      const handle = await open(path, 'w');
      try {
        await handle.writeFile(data);
      } finally {
        await handle.close();
      }
      this.files.push(path);
      return;
    }
    const stream = await this.openStream(placement);
    if (stream.ivf) {
      const pts = output.frame ?? stream.ivf.frames;
      stream.ivf.frames += 1;
      await this.append(stream, ivfFrameHeader(data.length, pts));
    }
    await this.append(stream, data);
  }

  private async openStream(placement: Exclude<OutputPlacement, { kind: 'file' }>): Promise<OpenStream> {
    const existing = this.streams.get(placement.file);
    if (existing) return existing;
    const path = join(this.dir, placement.file);
    const stream: OpenStream = { handle: await open(path, 'w'), position: 0 };
    this.streams.set(placement.file, stream);
    this.files.push(path);
    if (placement.kind === 'ivf') {
      stream.ivf = { codec: placement.codec, frames: 0 };
      await this.append(stream, this.ivfHeader(stream.ivf.codec, 0));
    }
    return stream;
  }

  private ivfHeader(codec: IvfCodec, frames: number): Buffer {
    return ivfFileHeader(codec, this.target.width, this.target.height, this.target.fps, frames);
  }

  private async append(stream: OpenStream, data: Buffer): Promise<void> {
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await stream.handle.write(
        data,
        written,
        data.length - written,
        stream.position,
      );
      written += bytesWritten;
      stream.position += bytesWritten;
    }
  }

  /** Finishes and closes the files. */
  async close(): Promise<void> {
    await this.chain;
    for (const stream of this.streams.values()) {
      if (stream.ivf)
        await stream.handle.write(this.ivfHeader(stream.ivf.codec, stream.ivf.frames), 0, 32, 0);
      await stream.handle.close();
    }
    this.streams.clear();
  }
}
