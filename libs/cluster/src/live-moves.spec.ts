import type { NodeRecord, StreamParams } from '#contracts';
import { KeySpace } from './keys.js';
import { handOverLiveStream } from './live-moves.js';
import type { RedisClient } from './redis-connection.js';
import type { StreamRecord } from './stream-store.js';

const node = (id: string, patch: Partial<NodeRecord> = {}) =>
  ({
    id,
    name: id,
    pool: 'cpu',
    codecs: ['h264'],
    gpuCodecs: [],
    concurrency: 2,
    active: 0,
    ...patch,
  }) as NodeRecord;

function setup(nodes: NodeRecord[], pinnedTo = 'a') {
  const record = {
    id: 's1',
    node: pinnedTo,
    state: 'open',
    epoch: 0,
    params: { codec: 'h264', pool: 'cpu' } as StreamParams,
  } as StreamRecord;
  const calls: string[] = [];
  const redis = {
    scard: (key: string) => Promise.resolve(key.includes(':node:busy:') ? 5 : 0),
    srem: (key: string) => Promise.resolve(calls.push(`srem ${key}`)),
    zadd: (key: string) => Promise.resolve(calls.push(`zadd ${key}`)),
    hset: (key: string, _field: string, value: string) => Promise.resolve(calls.push(`hset ${key} ${value}`)),
    sadd: (key: string) => Promise.resolve(calls.push(`sadd ${key}`)),
    hincrby: (key: string, field: string) => Promise.resolve(calls.push(`hincrby ${key} ${field}`)),
  } as unknown as RedisClient;
  const streams = {
    get: () => Promise.resolve(record),
    repin: (_id: string, from: string, to: string) => {
      if (record.node !== from) return Promise.resolve(false);
      record.node = to;
      record.epoch++;
      return Promise.resolve(true);
    },
  };
  const move = () =>
    handOverLiveStream(redis, new KeySpace('p'), { list: () => Promise.resolve(nodes) }, streams, 's1', 'a');
  return { record, calls, move };
}

describe('handOverLiveStream', () => {
  it('moves the stream to the least loaded other node with a data port, with the pin bookkeeping', async () => {
    const { record, calls, move } = setup([
      node('a', { dataUrl: 'ws://a' }),
      node('no-port'),
      node('busy', { dataUrl: 'ws://busy' }),
      node('free', { dataUrl: 'ws://free' }),
    ]);
    expect(await move()).toBe('free');
    expect(record).toMatchObject({ node: 'free', epoch: 1 });
    expect(calls).toEqual([
      'srem p:node:a:streams',
      'zadd p:streams:live:seen',
      'hset p:streams:live free',
      'sadd p:streams:nodes',
      'sadd p:node:free:streams',
      'hincrby p:streams:live:moves drain',
    ]);
  });

  it('takes a node without a data port when no other has one, and none when no other can encode it', async () => {
    expect(await setup([node('a'), node('plain')]).move()).toBe('plain');
    expect(await setup([node('a'), node('vp8-only', { codecs: ['vp8'] })]).move()).toBeNull();
  });

  it('leaves a stream that is not on this node any more', async () => {
    expect(await setup([node('b', { dataUrl: 'ws://b' })], 'elsewhere').move()).toBeNull();
  });
});
