/**
 * Copies of a raw frame's bytes on the service path (uncompressed upload, image codec), read from the
 * code and checked where it could be (see `evidence`). The raw in-process path makes none: sharp
 * reads the caller's buffer in place. Video adds the pipe into ffmpeg on both paths alike.
 */
export type CopyPlace = 'node' | 'redis' | 'kernel';

export interface FrameCopy {
  step: string;
  place: CopyPlace;
  copies: number;
  evidence: string;
  /** Only with Redis's append-only file on (the service's default, DESIGN.md). */
  aof?: true;
}

export const SERVICE_PATH_COPIES: FrameCopy[] = [
  {
    step: 'client -> API: loopback TCP send + receive',
    place: 'kernel',
    copies: 2,
    evidence: 'write(2) into the socket buffer, read(2) into the API process',
  },
  {
    step: 'API: HTTP parser hands each body chunk to JS',
    place: 'node',
    copies: 1,
    evidence:
      "Node's llhttp binding copies on_body data into a new Buffer (checked: each chunk owns its ArrayBuffer)",
  },
  {
    step: 'API: body chunk -> SETRANGE on the Redis socket',
    place: 'node',
    copies: 0,
    evidence: 'sendDirect writes the chunk Buffer itself after the RESP header (zero-copy-command.ts)',
  },
  {
    step: 'API -> Redis: loopback TCP send + receive',
    place: 'kernel',
    copies: 2,
    evidence: 'into the query buffer of the API connection',
  },
  {
    step: 'Redis: SETRANGE writes the piece into the frame value',
    place: 'redis',
    copies: 1,
    evidence:
      'memcpy into the value (pre-sized by a first SETRANGE that zero-fills it); pipelined commands ' +
      'also cost a copy of the argument out of the query buffer, not counted here',
  },
  {
    step: 'Redis: append-only file (the service default)',
    place: 'redis',
    copies: 2,
    evidence: 'feedAppendOnlyFile: command re-serialised (catAppendOnlyGenericCommand), appended to aof_buf',
    aof: true,
  },
  {
    step: 'Redis: AOF buffer -> file',
    place: 'kernel',
    copies: 1,
    evidence: 'write(2) of aof_buf to the page cache (then fsync every second, and AOF rewrites)',
    aof: true,
  },
  {
    step: 'Redis: GETRANGE reply',
    place: 'redis',
    copies: 1,
    evidence: 'addReplyBulkCBuffer copies the range into the reply buffers',
  },
  {
    step: 'Redis -> worker: loopback TCP send + receive',
    place: 'kernel',
    copies: 2,
    evidence: 'write(2) from the reply buffers, read(2) into 64 KiB socket chunks in the worker',
  },
  {
    step: 'worker: ioredis joins a 512 KiB GETRANGE reply spanning socket chunks',
    place: 'node',
    copies: 1,
    evidence:
      'resp decoder Buffer.concat (checked: each 512 KiB piece owns its ArrayBuffer; a 16 KiB one does not)',
  },
  {
    step: 'worker: FrameStore.readInto copies the piece into the pooled frame buffer',
    place: 'node',
    copies: 1,
    evidence: 'part.copy(target, start) (frame-store.ts)',
  },
  {
    step: 'worker: sharp reads the frame buffer in place',
    place: 'node',
    copies: 0,
    evidence: 'rawFrameToSharp passes the Buffer as raw input; channel swap happens inside libvips',
  },
];

/** How compressed uploads change the count. */
export const COMPRESSED_UPLOAD_NOTE =
  "With the SDK's LZ4 (Content-Encoding: lz4-block) the same path carries each frame's LZ4 block (about " +
  '1/14 of a desktop frame here) with one copy less: the API sends a block in one SET (its pieces straight ' +
  "from the request), the node GETs it whole and hands the reply's buffer to lz4-napi, which decompresses " +
  "it (libuv's pool) into the frame buffer the encoder reads: 13 copies of the compressed bytes and one " +
  'write of the frame. The minimum of this path (client -> API -> Redis -> node over loopback TCP, the ' +
  "append-only file on) is 12 copies: 7 in the kernel, 4 in Redis and the HTTP parser's, none of the " +
  "node's; the raw path makes 14, the lz4-block path 13 (of 1/14 of the bytes).";

/** Copies on the lz4-block path (of the compressed bytes), as SERVICE_PATH_COPIES for raw frames. */
export const LZ4_BLOCK_PATH_COPIES: FrameCopy[] = SERVICE_PATH_COPIES.filter(
  (copy) => !copy.step.startsWith('worker: FrameStore.readInto'),
).map((copy) =>
  copy.step.startsWith('worker: ioredis joins')
    ? {
        ...copy,
        step: 'worker: ioredis joins a GET reply spanning socket chunks (the buffer lz4-napi decompresses)',
      }
    : copy.step.startsWith('worker: sharp reads')
      ? {
          ...copy,
          step: 'worker: lz4-napi decompresses into the frame buffer, which the encoder reads in place',
        }
      : copy,
);

/**
 * A case's copies per frame: how many times its bytes are copied, and that in whole frames (the
 * compressed bytes are `compressedFraction` of the frame; decompression writes the frame once more).
 */
export function copiesPerFrame(
  encoding: string,
  compressedFraction: number,
): { copies: number; frame_equivalents: number } {
  if (encoding === 'identity') {
    const copies = countCopies().total;
    return { copies, frame_equivalents: copies };
  }
  const copies = countCopies(LZ4_BLOCK_PATH_COPIES).total;
  return { copies, frame_equivalents: copies * compressedFraction + 1 };
}

export interface CopyCount {
  node: number;
  redis: number;
  kernel: number;
  total: number;
  /** Without the append-only file (redis-server --appendonly no). */
  totalWithoutAof: number;
  rawPath: number;
}

export function countCopies(copies: FrameCopy[] = SERVICE_PATH_COPIES): CopyCount {
  const sum = (filter: (copy: FrameCopy) => boolean) =>
    copies.filter(filter).reduce((total, copy) => total + copy.copies, 0);
  const total = sum(() => true);
  return {
    node: sum((copy) => copy.place === 'node'),
    redis: sum((copy) => copy.place === 'redis'),
    kernel: sum((copy) => copy.place === 'kernel'),
    total,
    totalWithoutAof: total - sum((copy) => copy.aof === true),
    rawPath: 0,
  };
}
