import type { NodeRecord } from '../nodes.js';

/** A registry record for tests: an idle node named `name` (also its id) unless `overrides` say otherwise. */
export function nodeRecord(
  overrides: Partial<NodeRecord> & Pick<NodeRecord, 'name' | 'pool' | 'codecs'>,
): NodeRecord {
  return {
    id: overrides.name,
    host: 'h',
    pid: 1,
    hardware: [],
    gpuCodecs: [],
    concurrency: 1,
    active: 0,
    processed: 0,
    failed: 0,
    encodeFps: 0,
    version: '0',
    startedAt: '',
    lastSeen: '',
    ...overrides,
  };
}
