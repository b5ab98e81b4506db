import { CODECS, isCodec, type Codec, type Pool } from '#contracts';
import { ConfigError, integerSetting, type Env } from '#cluster/shared-config.js';

/** The codecs each pool is configured to serve (POOL_CODECS), whether or not a node of it is alive. */
export type PoolCodecs = Record<Pool, readonly Codec[]>;

/** What scale-from-zero needs: which work may wait for a node, and for how long. */
export interface ScaleFromZeroConfig {
  /** null: no POOL_CODECS, so a job with no live node to take it is refused (503), as before. */
  poolCodecs: PoolCodecs | null;
  /** A queued job that no live node can take fails this long after it was submitted. */
  noNodeWaitSeconds: number;
  /** Gpu work waits this long for a gpu node before it moves to the cpu pool. */
  gpuWaitSeconds: number;
}

const EXAMPLE = 'cpu:jpeg,webp,png,avif,h264,hevc,vp8,vp9,av1;gpu:h264,hevc';

/** POOL_CODECS: `cpu:jpeg,webp,...;gpu:h264,hevc` (`*` for every codec); unset: null. */
export function parsePoolCodecs(value: string | undefined): PoolCodecs | null {
  if (value === undefined || value.trim() === '') return null;
  const served: Record<Pool, Codec[]> = { cpu: [], gpu: [] };
  const seen = new Set<string>();
  for (const entry of value.split(';').map((part) => part.trim())) {
    if (entry === '') continue;
    const match = /^(cpu|gpu)\s*:\s*(.*)$/.exec(entry);
    if (!match)
      throw new ConfigError(
        `POOL_CODECS: "${entry}" is not POOL:CODEC,CODEC (pools: cpu, gpu), e.g. POOL_CODECS=${EXAMPLE}`,
      );
    const pool = match[1] as Pool;
    if (seen.has(pool)) throw new ConfigError(`POOL_CODECS names the ${pool} pool twice; give it once`);
    seen.add(pool);
    const names = match[2].split(',').map((name) => name.trim().toLowerCase());
    if (names.length === 1 && names[0] === '*') {
      served[pool] = [...CODECS];
      continue;
    }
    for (const name of names) {
      if (!isCodec(name))
        throw new ConfigError(
          `POOL_CODECS: "${name}" (${pool} pool) is not a codec; codecs: ${CODECS.join(', ')}, or * for all`,
        );
      if (!served[pool].includes(name)) served[pool].push(name);
    }
  }
  if (served.cpu.length + served.gpu.length === 0)
    throw new ConfigError(`POOL_CODECS is set but names no codec, e.g. POOL_CODECS=${EXAMPLE}`);
  return served;
}

/**
 * `retentionSeconds`: a waiting job's frames expire after RETENTION_SECONDS, so it must fail for want
 * of a node before that (default: 600 s, or half the retention time when that is shorter).
 */
export function loadScaleFromZeroConfig(env: Env, retentionSeconds: number): ScaleFromZeroConfig {
  const noNodeWaitSeconds = integerSetting(
    env,
    'NO_NODE_WAIT_SECONDS',
    Math.min(600, Math.floor(retentionSeconds / 2)),
    1,
    7 * 24 * 3600,
  );
  if (noNodeWaitSeconds >= retentionSeconds)
    throw new ConfigError(
      `NO_NODE_WAIT_SECONDS must be less than RETENTION_SECONDS (${retentionSeconds}): a waiting job's frames expire after RETENTION_SECONDS, got "${noNodeWaitSeconds}"`,
    );
  return {
    poolCodecs: parsePoolCodecs(env.POOL_CODECS),
    noNodeWaitSeconds,
    gpuWaitSeconds: integerSetting(env, 'GPU_WAIT_SECONDS', 0, 0, 24 * 3600),
  };
}
