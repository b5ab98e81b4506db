import { StreamStore, type AllocateResult, type StreamRecord } from '#cluster';
import type { AcceptedBatch, Codec, LiveSessionGrant, Pool, StreamEvent, StreamParams } from '#contracts';
import {
  IdempotencyPendingException,
  IdempotencyStore,
  type IdempotencyEntry,
  type IdempotencyScope,
} from '../submission/idempotency.js';
import { LiveFailover } from '../streams/live-failover.js';
import { LiveStreams, type LivePlace } from '../streams/live-streams.js';
import { SessionGrants } from '../streams/session-grants.js';

type StreamStoreUsed = Pick<StreamStore, 'create' | 'get' | 'allocate' | 'commit' | 'close'>;
type IdempotencyStoreUsed = Pick<IdempotencyStore, 'answerOf' | 'complete' | 'abandon'>;

/** A stream's batch keys in memory (`streamId/key`), as IdempotencyStore keeps them. */
export class FakeIdempotencyStore implements IdempotencyStoreUsed {
  readonly entries = new Map<string, IdempotencyEntry<AcceptedBatch>>();

  answerOf<T>(scope: IdempotencyScope, key: string): Promise<T | null> {
    const entry = this.entries.get(scopedKey(scope, key));
    if (!entry) return Promise.resolve(null);
    if (entry.state === 'pending') return Promise.reject(new IdempotencyPendingException());
    return Promise.resolve(entry.result as T);
  }
  complete<T>(scope: IdempotencyScope, key: string, fingerprint: string, result: T): Promise<void> {
    this.entries.set(scopedKey(scope, key), { fingerprint, state: 'done', result: result as AcceptedBatch });
    return Promise.resolve();
  }
  abandon(scope: IdempotencyScope, key: string): Promise<void> {
    this.entries.delete(scopedKey(scope, key));
    return Promise.resolve();
  }
}

function scopedKey(scope: IdempotencyScope, key: string): string {
  return `${typeof scope === 'string' ? scope : scope.streamId}/${key}`;
}

/** A stream store in memory: records, and the events committed for a seq; it reserves keys in `keys`. */
export class FakeStreamStore implements StreamStoreUsed {
  readonly records = new Map<string, StreamRecord>();
  constructor(readonly keys: FakeIdempotencyStore) {}
  readonly committed: { streamId: string; seq: number; events: StreamEvent[] }[] = [];

  create(streamId: string, params: StreamParams, node: string | null, createdAt: number, tenant?: string) {
    this.records.set(streamId, {
      id: streamId,
      params,
      state: 'open',
      nextSeq: 0,
      cursor: 0,
      frames: 0,
      lastEventId: 0,
      node,
      epoch: 0,
      createdAt,
      tenant: tenant ?? null,
    });
    return Promise.resolve();
  }
  get(streamId: string): Promise<StreamRecord | null> {
    const record = this.records.get(streamId);
    return Promise.resolve(record ? { ...record } : null);
  }
  allocate(
    streamId: string,
    frames: number,
    jobId: string,
    idempotencyKey?: string,
  ): Promise<AllocateResult> {
    const record = this.records.get(streamId);
    if (!record) return Promise.resolve('missing');
    if (record.state !== 'open') return Promise.resolve('closed');
    const key = idempotencyKey === undefined ? undefined : `${streamId}/${idempotencyKey}`;
    if (key !== undefined && this.keys.entries.has(key)) return Promise.resolve('repeat');
    const allocated = { seq: record.nextSeq, firstFrame: record.frames };
    record.nextSeq++;
    record.frames += frames;
    if (key) {
      const result = { streamId, jobId, frames, ...allocated };
      this.keys.entries.set(key, { fingerprint: '', state: 'pending', result });
    }
    return Promise.resolve(allocated);
  }
  commit(streamId: string, seq: number, events: StreamEvent[]) {
    this.committed.push({ streamId, seq, events });
    return Promise.resolve({ status: 'appended' as const, delivered: seq + 1, ended: false });
  }
  close(streamId: string): Promise<'closed' | 'not-open' | 'missing'> {
    const record = this.records.get(streamId);
    if (!record) return Promise.resolve('missing');
    if (record.state !== 'open') return Promise.resolve('not-open');
    record.state = 'closed';
    return Promise.resolve('closed');
  }
}

type LiveStreamsUsed = Pick<
  LiveStreams,
  'place' | 'track' | 'pin' | 'unpin' | 'nodeOf' | 'watchNode' | 'touch'
>;

/** Live placement as the streams service sees it: the answer `place` gives is set by the test. */
export class FakeLiveStreams implements LiveStreamsUsed {
  placement: LivePlace = { node: null, atCapacity: false };
  readonly placed: { codec: Codec; pool: Pool }[] = [];
  readonly tracked: string[] = [];
  readonly pinned = new Map<string, string>();
  readonly unpinned: string[] = [];

  place(codec: Codec, pool: Pool): Promise<LivePlace> {
    this.placed.push({ codec, pool });
    return Promise.resolve(this.placement);
  }
  track(streamId: string): Promise<void> {
    this.tracked.push(streamId);
    return Promise.resolve();
  }
  pin(streamId: string, nodeId: string): Promise<void> {
    this.pinned.set(streamId, nodeId);
    return Promise.resolve();
  }
  unpin(streamId: string): Promise<void> {
    this.pinned.delete(streamId);
    this.unpinned.push(streamId);
    return Promise.resolve();
  }
  nodeOf(record: StreamRecord): Promise<string | null> {
    return Promise.resolve(this.pinned.get(record.id) ?? null);
  }
  watchNode(): Promise<void> {
    return Promise.resolve();
  }
  touch(): Promise<void> {
    return Promise.resolve();
  }
}

/** Grants as the streams service sees them: one for every open live stream with a node. */
export class FakeSessionGrants implements Pick<SessionGrants, 'grantFor'> {
  grantFor(record: StreamRecord, relayBase: string): Promise<LiveSessionGrant | undefined> {
    if (record.params.mode !== 'live' || record.state !== 'open' || !record.node) {
      return Promise.resolve(undefined);
    }
    const path = `/v1/streams/${record.id}/session`;
    return Promise.resolve({
      url: `ws://${record.node}.data${path}`,
      token: `token:${record.id}:${record.node}:${record.epoch}`,
      expiresAt: new Date(0).toISOString(),
      node: record.node,
      relayUrl: `${relayBase}${path}`,
    });
  }
}

/** Failover as the streams service sees it: the reports it got, answered with the record as given. */
export class FakeLiveFailover implements Pick<LiveFailover, 'reportUnreachable'> {
  readonly reports: { streamId: string; node: string }[] = [];
  reportUnreachable(record: StreamRecord, nodeId: string): Promise<StreamRecord> {
    this.reports.push({ streamId: record.id, node: nodeId });
    return Promise.resolve(record);
  }
}

/** Providers that put these fakes behind a StreamsService. */
export function streamsServiceFakes() {
  const idempotency = new FakeIdempotencyStore();
  const fakes = {
    idempotency,
    streams: new FakeStreamStore(idempotency),
    live: new FakeLiveStreams(),
    grants: new FakeSessionGrants(),
    failover: new FakeLiveFailover(),
  };
  const providers = [
    { provide: StreamStore, useValue: fakes.streams },
    { provide: IdempotencyStore, useValue: fakes.idempotency },
    { provide: LiveStreams, useValue: fakes.live },
    { provide: SessionGrants, useValue: fakes.grants },
    { provide: LiveFailover, useValue: fakes.failover },
  ];
  return { fakes, providers };
}
