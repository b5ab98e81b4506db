import type { StreamLinks, StreamView } from '#contracts';
import { paddedOutputSize } from '../jobs/job-view.js';
import type { StreamRecord } from '#cluster';

export function streamLinks(streamId: string): StreamLinks {
  const self = `/v1/streams/${streamId}`;
  return { self, frames: `${self}/frames`, events: `${self}/events`, ws: `${self}/ws` };
}

export function toStreamView(record: StreamRecord): StreamView {
  const { params } = record;
  return {
    id: record.id,
    codec: params.codec,
    mode: params.mode,
    pool: params.pool,
    state: record.state,
    width: params.width,
    height: params.height,
    format: params.format,
    quality: params.quality,
    speed: params.speed,
    fps: params.fps,
    keyframeInterval: params.keyframeInterval,
    oddSize: params.oddSize ?? 'exact',
    compression: params.compression ?? 'none',
    ...paddedOutputSize(params.codec, params.width, params.height, params.oddSize),
    batches: record.nextSeq,
    delivered: record.cursor,
    frames: record.frames,
    lastEventId: record.lastEventId,
    node: record.node,
    createdAt: new Date(record.createdAt).toISOString(),
    links: streamLinks(record.id),
  };
}
