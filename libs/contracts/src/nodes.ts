import type { Codec, Pool } from './codecs';

/** The heartbeat record an encoder node keeps in the registry while it lives. */
export interface NodeRecord {
  id: string;
  name: string;
  host: string;
  pid: number;
  pool: Pool;
  codecs: Codec[];
  hardware: string[];
  concurrency: number;
  active: number;
  processed: number;
  failed: number;
  version: string;
  startedAt: string;
  lastSeen: string;
}
