import type { Codec, Pool } from './codecs.js';

/** The heartbeat record an encoder node keeps in the registry while it lives. */
export interface NodeRecord {
  id: string;
  name: string;
  host: string;
  pid: number;
  pool: Pool;
  codecs: Codec[];
  hardware: string[];
  /** Codecs this node takes from the gpu queue: those it proved a hardware encoder for. */
  gpuCodecs: Codec[];
  concurrency: number;
  active: number;
  processed: number;
  failed: number;
  /** Frames encoded per second over the last minute. */
  encodeFps: number;
  /** Live streams this node keeps an encoder context for. */
  liveStreams?: number;
  /**
   * The most live encoder contexts this node keeps at once (`--live-max-contexts`): the API places no
   * new live stream on it past this many streams pinned to it. Absent from nodes older than the field.
   */
  liveCapacity?: number;
  /** After this long without a batch a live stream's encoder context here is closed (`--live-idle-timeout`). */
  liveIdleTimeoutMs?: number;
  /**
   * The node's data port for live sessions (`ws://host:port` or `wss://`, from `--bind`/`--advertise`);
   * absent when the node has none (it then takes live streams only through Redis, POST /frames).
   */
  dataUrl?: string;
  version: string;
  startedAt: string;
  lastSeen: string;
}
