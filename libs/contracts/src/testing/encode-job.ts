import type { EncodeJobData } from '../jobs.js';

/**
 * Job data for tests: one 2x2 rgba png frame at the default settings, stored raw, unless `overrides`
 * say otherwise (the stored bytes follow the size and frame count unless `input` is given).
 */
export function encodeJobData(overrides: Partial<EncodeJobData> = {}): EncodeJobData {
  const data: Omit<EncodeJobData, 'input'> = {
    jobId: 'AAAAAAAAAAAAAAAA',
    codec: 'png',
    pool: 'cpu',
    width: 2,
    height: 2,
    format: 'rgba',
    frames: 1,
    settings: { quality: 80, speed: 70, fps: 30 },
    createdAt: 0,
    ...overrides,
  };
  return {
    ...data,
    input: overrides.input ?? {
      encoding: 'identity',
      storedBytes: data.width * data.height * 4 * data.frames,
    },
  };
}
