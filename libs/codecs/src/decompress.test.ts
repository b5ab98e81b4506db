import { execFileSync } from 'node:child_process';
import { compressLz4Frame } from './lz4.js';
import { syntheticFrame } from './testing/synthetic-frames.js';

/** Interoperability with the reference implementation: the `lz4` CLI (installed by `npm test`'s setup). */
describe('lz4 frames and the lz4 CLI', () => {
  it('writes frames the lz4 CLI decodes', () => {
    const raw = Buffer.concat(
      [0, 1, 2].map((i) => syntheticFrame({ width: 160, height: 120, format: 'bgra', frameIndex: i })),
    );
    const decoded = execFileSync('lz4', ['-d', '-c'], { input: compressLz4Frame(raw), maxBuffer: 64 << 20 });
    expect(decoded.equals(raw)).toBe(true);
  });
});
