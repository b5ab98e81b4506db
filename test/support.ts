import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rgbaToPixelFormat, syntheticRgba } from '../libs/codecs/src/index.js';
import type { RawJobRequest } from '../libs/client/src/index.js';

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A raw bgra batch of desktop-like frames and the request that declares it. */
export function bgraBatch(
  codec: RawJobRequest['codec'],
  width: number,
  height: number,
  frames: number,
  extra: Partial<RawJobRequest> = {},
): { request: RawJobRequest; body: Buffer } {
  const body = Buffer.concat(
    Array.from({ length: frames }, (_, index) =>
      rgbaToPixelFormat(syntheticRgba(width, height, index, false), 'bgra'),
    ),
  );
  return { request: { codec, width, height, format: 'bgra', frames, ...extra }, body };
}

export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
