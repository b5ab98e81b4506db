/**
 * Copies of a raw frame's bytes on the service path (uncompressed upload stored as sent, image codec:
 * frames over STORE_LZ4_MAX_FRAME_BYTES; smaller ones take STORED_LZ4_* below), read from the
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
  "node's; the raw path makes 14, the lz4-block path 13 (of 1/14 of the bytes). An uncompressed upload " +
  'of frames up to STORE_LZ4_MAX_FRAME_BYTES (the default for 1080p and 4K) is stored as LZ4 blocks by ' +
  'the API: 4 copies of the frame (client -> API, the HTTP parser, gathered whole for lz4-napi), 10 of its ' +
  'block from the API on, and the write of decompression: 14 copies, about 6 frames of bytes for desktop ' +
  'content instead of 14.';

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
 * An uncompressed upload whose frames the API stores as LZ4 blocks (frames up to
 * STORE_LZ4_MAX_FRAME_BYTES, the default for 1080p and 4K): the frame crosses client -> API, is gathered
 * and compressed there; from then on the block takes the lz4-block path.
 */
export const STORED_LZ4_FRAME_COPIES: FrameCopy[] = [
  ...SERVICE_PATH_COPIES.slice(0, 2),
  {
    step: 'API: the frame gathered whole into a reused buffer, which lz4-napi compresses (none for a frame in one chunk)',
    place: 'node',
    copies: 1,
    evidence:
      'encodedFrames (frame-store.ts): data.copy(filling, offset); the block is a new buffer, not a copy',
  },
];
/** The same upload's copies of the stored block: the lz4-block path from the API on. */
export const STORED_LZ4_BLOCK_COPIES: FrameCopy[] = LZ4_BLOCK_PATH_COPIES.slice(2);

/**
 * A case's copies per frame: how many times its bytes are copied, and that in whole frames (what is
 * sent is `compressedFraction` of the frame; an uncompressed upload stored as LZ4 blocks by the API
 * stores `storedFraction` of it; decompression writes the frame once more).
 */
export function copiesPerFrame(
  encoding: string,
  compressedFraction: number,
  storedFraction = 1,
): { copies: number; frame_equivalents: number } {
  if (encoding === 'identity' && storedFraction >= 1) {
    const copies = countCopies().total;
    return { copies, frame_equivalents: copies };
  }
  if (encoding === 'identity') {
    const frame = countCopies(STORED_LZ4_FRAME_COPIES).total;
    const block = countCopies(STORED_LZ4_BLOCK_COPIES).total;
    return { copies: frame + block, frame_equivalents: frame + block * storedFraction + 1 };
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
