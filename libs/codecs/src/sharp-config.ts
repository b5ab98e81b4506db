import os from 'node:os';
import sharp from 'sharp';

export interface SharpSizing {
  /** libvips threads per sharp operation. */
  threads: number;
}

/**
 * Sizes sharp for a node that runs `concurrency` jobs at once: libvips threads per image =
 * cores / concurrency (at least 1), so jobs times threads does not oversubscribe the CPU. Turns
 * sharp's operation cache off, since every frame is new.
 */
export function configureSharp(options: { concurrency: number; cores?: number }): SharpSizing {
  const cores = options.cores ?? os.availableParallelism();
  const concurrency = Math.max(1, Math.floor(options.concurrency));
  const threads = Math.max(1, Math.floor(cores / concurrency));
  sharp.concurrency(threads);
  sharp.cache(false);
  return { threads };
}

/** ffmpeg threads per encode under the same sizing rule. */
export function threadsPerJob(concurrency: number, cores: number = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, Math.floor(concurrency))));
}
