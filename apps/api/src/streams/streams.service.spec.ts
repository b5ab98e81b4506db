import {
  BadRequestException,
  ConflictException,
  NotFoundException,
  PayloadTooLargeException,
  UnprocessableEntityException,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { frameByteLength } from '#contracts';
import type { Principal } from '../auth/key-ring.js';
import { RetryLaterException } from '../common/http-errors.js';
import { IdempotencyPendingException } from '../submission/idempotency.js';
import { submissionFakes, liveNode, rawUpload } from '../testing/fakes.js';
import { streamsServiceFakes } from '../testing/stream-fakes.js';
import { CreateStreamBody } from './create-stream.dto.js';
import { StreamsService } from './streams.service.js';

const ACME: Principal = { tenant: 'acme', operator: false };
const OTHER: Principal = { tenant: 'other', operator: false };
const OPERATOR: Principal = { tenant: 'default', operator: true };
const FRAME_BYTES = frameByteLength(4, 2, 'rgba');

function body(fields: Partial<CreateStreamBody>): CreateStreamBody {
  return Object.assign(new CreateStreamBody(), { width: 4, height: 2, format: 'rgba' }, fields);
}

async function setUp(nodes = [liveNode('cpu-1', 'cpu', ['png', 'h264', 'vp9'])]) {
  const jobs = submissionFakes(nodes);
  const streams = streamsServiceFakes();
  const module = await Test.createTestingModule({
    providers: [StreamsService, ...jobs.providers, ...streams.providers],
  }).compile();
  return { service: module.get(StreamsService), ...jobs.fakes, ...streams.fakes };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error as Error,
  );
}

describe('StreamsService.create', () => {
  it('opens a batch stream on the routed codec and pool, owned by the tenant, with keyframes every 10 s', async () => {
    const { service, streams, live } = await setUp();
    const view = await service.create(body({ accept: 'av1,vp9,h264', fps: 25 }), 'acme');
    expect(view).toMatchObject({
      codec: 'vp9',
      mode: 'batch',
      pool: 'cpu',
      state: 'open',
      keyframeInterval: 250,
      node: null,
    });
    expect(streams.records.get(view.id)?.tenant).toBe('acme');
    expect(live.tracked).toEqual([view.id]);
    expect(live.placed).toEqual([]);
  });

  it('pins a live stream to the node placement picks', async () => {
    const { service, live } = await setUp();
    live.placement = { node: 'cpu-1', atCapacity: false };
    const view = await service.create(body({ codec: 'h264', mode: 'live' }), 'acme');
    expect(view).toMatchObject({ mode: 'live', node: 'cpu-1' });
    expect(live.placed).toEqual([{ codec: 'h264', pool: 'cpu' }]);
    expect(live.pinned.get(view.id)).toBe('cpu-1');
  });

  it('answers 503 with Retry-After 10 when every live node is full, and opens nothing', async () => {
    const { service, streams, live } = await setUp();
    live.placement = { node: null, atCapacity: true };
    const error = await failure(service.create(body({ codec: 'h264', mode: 'live' }), 'acme'));
    expect(error).toBeInstanceOf(RetryLaterException);
    expect((error as RetryLaterException).retryAfterSeconds).toBe(10);
    expect(error.message).toMatch(/keeps as many as its capacity allows .* or use mode=batch/);
    expect(streams.records.size).toBe(0);
    expect(live.tracked).toEqual([]);
  });

  it('answers 503 with Retry-After 5 when no live node can take the codec now', async () => {
    const { service, streams } = await setUp();
    const error = await failure(service.create(body({ codec: 'h264', mode: 'live' }), 'acme'));
    expect(error).toBeInstanceOf(RetryLaterException);
    expect((error as RetryLaterException).retryAfterSeconds).toBe(5);
    expect(streams.records.size).toBe(0);
  });

  it('answers 503 when no node is alive at all, before asking for live placement', async () => {
    const { service, live } = await setUp([]);
    await expect(service.create(body({ codec: 'h264', mode: 'live' }), 'acme')).rejects.toThrow(
      RetryLaterException,
    );
    expect(live.placed).toEqual([]);
  });

  it('refuses codecs: 400 for names it does not know, 422 for one no live node encodes', async () => {
    const { service, streams } = await setUp();
    await expect(service.create(body({ accept: 'mp3' }), 'acme')).rejects.toThrow(BadRequestException);
    const error = await failure(service.create(body({ codec: 'av1' }), 'acme'));
    expect(error).toBeInstanceOf(UnprocessableEntityException);
    expect((error as UnprocessableEntityException).getResponse()).toMatchObject({
      available: ['h264', 'png', 'vp9'],
    });
    expect(streams.records.size).toBe(0);
  });

  it('refuses an image codec in live mode (400, saying to use batch) and a frame over the pixel limit (413)', async () => {
    const { service } = await setUp();
    await expect(service.create(body({ accept: 'h264,png', mode: 'live' }), 'acme')).rejects.toThrow(
      'live mode keeps a video encoder running; png is an image codec: use mode=batch for images',
    );
    await expect(
      service.create(body({ codec: 'png', width: 100_000, height: 100_000 }), 'acme'),
    ).rejects.toThrow(PayloadTooLargeException);
  });
});

describe('StreamsService live sessions', () => {
  const relayBase = 'ws://api.example:3000';

  it("gives a live stream's view its session (with the API's relay), and a batch stream's none", async () => {
    const { service, live } = await setUp();
    live.placement = { node: 'cpu-1', atCapacity: false };
    const created = await service.create(body({ codec: 'h264', mode: 'live' }), 'acme', { relayBase });
    expect(created.session).toEqual({
      url: `ws://cpu-1.data/v1/streams/${created.id}/session`,
      token: `token:${created.id}:cpu-1:0`,
      expiresAt: new Date(0).toISOString(),
      node: 'cpu-1',
      relayUrl: `${relayBase}/v1/streams/${created.id}/session`,
    });
    expect((await service.get(created.id, ACME, { relayBase })).session?.node).toBe('cpu-1');
    // Without the relay base (a view the controller did not ask a session for), none.
    expect((await service.get(created.id, ACME)).session).toBeUndefined();
    const batch = await service.create(body({ codec: 'h264' }), 'acme', { relayBase });
    expect(batch.session).toBeUndefined();
  });

  it('stores the session compression of a live stream, and refuses compression on a batch stream (400)', async () => {
    const { service, streams, live } = await setUp();
    live.placement = { node: 'cpu-1', atCapacity: false };
    const lz4 = await service.create(body({ codec: 'h264', mode: 'live', compression: 'lz4' }), 'acme');
    expect(lz4.compression).toBe('lz4');
    expect(streams.records.get(lz4.id)?.params.compression).toBe('lz4');
    const plain = await service.create(body({ codec: 'h264', mode: 'live' }), 'acme');
    expect(plain.compression).toBe('none');
    expect((await service.create(body({ codec: 'h264' }), 'acme')).compression).toBe('none');
    const error = await failure(service.create(body({ codec: 'h264', compression: 'lz4' }), 'acme'));
    expect(error).toBeInstanceOf(BadRequestException);
    expect(error.message).toMatch(/compression is for live sessions \(mode=live\)/);
  });

  it('hands a reported node to the failover before answering the view', async () => {
    const { service, live, failover } = await setUp();
    live.placement = { node: 'cpu-1', atCapacity: false };
    const { id } = await service.create(body({ codec: 'h264', mode: 'live' }), 'acme');
    await service.get(id, ACME, { relayBase, unreachable: 'cpu-1' });
    expect(failover.reports).toEqual([{ streamId: id, node: 'cpu-1' }]);
    // Another tenant's report never reaches it: 404 first.
    await expect(service.get(id, OTHER, { unreachable: 'cpu-1' })).rejects.toThrow(NotFoundException);
    expect(failover.reports).toHaveLength(1);
  });
});

describe('StreamsService visibility', () => {
  it("answers another tenant's stream exactly like an unknown one (404); owner and operators see it", async () => {
    const { service } = await setUp();
    const { id } = await service.create(body({ codec: 'png' }), 'acme');
    const unknownId = `s${'A'.repeat(16)}`;
    const unknown = await failure(service.get(unknownId, ACME));
    const foreign = await failure(service.get(id, OTHER));
    expect(foreign).toBeInstanceOf(NotFoundException);
    expect(foreign.message).toBe(unknown.message.replace(unknownId, id));
    await expect(service.get(id, ACME)).resolves.toMatchObject({ id });
    await expect(service.get(id, OPERATOR)).resolves.toMatchObject({ id });
    await expect(service.close(id, OTHER)).rejects.toThrow(NotFoundException);
    await expect(service.get(id, ACME)).resolves.toMatchObject({ state: 'open' });
  });
});

describe('StreamsService.submitFrames', () => {
  const frames = (count: number) => Buffer.alloc(FRAME_BYTES * count, 9);

  async function openStream() {
    const setup = await setUp();
    const { id } = await setup.service.create(body({ codec: 'png' }), 'acme');
    return { ...setup, id };
  }

  it('gives batches consecutive seqs and queues each as a job of the stream owner', async () => {
    const { service, id, queue, jobs } = await openStream();
    const first = await service.submitFrames(
      id,
      OPERATOR,
      2,
      rawUpload(frames(2)),
      FRAME_BYTES * 2,
      'identity',
    );
    const second = await service.submitFrames(id, ACME, 1, rawUpload(frames(1)), FRAME_BYTES, 'identity');
    expect([first, second]).toMatchObject([
      { streamId: id, seq: 0, frames: 2, firstFrame: 0 },
      { streamId: id, seq: 1, frames: 1, firstFrame: 2 },
    ]);
    expect(queue.added.map((added) => added.jobId)).toEqual([first.jobId, second.jobId]);
    expect(jobs.records.get(first.jobId)?.tenant).toBe('acme');
    expect(jobs.records.get(first.jobId)?.data.stream).toMatchObject({ streamId: id, seq: 0, firstFrame: 0 });
  });

  it('answers a repeat of an Idempotency-Key with the first batch, storing and queueing nothing more', async () => {
    const { service, id, queue, frames: stored } = await openStream();
    const first = await service.submitFrames(
      id,
      ACME,
      1,
      rawUpload(frames(1)),
      FRAME_BYTES,
      'identity',
      'k-1',
    );
    const repeat = await service.submitFrames(
      id,
      ACME,
      1,
      rawUpload(frames(1)),
      FRAME_BYTES,
      'identity',
      'k-1',
    );
    expect(repeat).toEqual(first);
    expect(queue.added).toHaveLength(1);
    expect(stored.writes).toBe(1);
  });

  it('answers 409 (retry later) while the first request with the key is still under way', async () => {
    const { service, id, idempotency, queue } = await openStream();
    idempotency.entries.set(`${id}/k-2`, {
      fingerprint: '',
      state: 'pending',
      result: { streamId: id, seq: 0, jobId: 'j', frames: 1, firstFrame: 0 },
    });
    await expect(
      service.submitFrames(id, ACME, 1, rawUpload(frames(1)), FRAME_BYTES, 'identity', 'k-2'),
    ).rejects.toThrow(IdempotencyPendingException);
    expect(queue.added).toEqual([]);
  });

  it('refuses frames for a closed stream with 409', async () => {
    const { service, id, frames: stored } = await openStream();
    await service.close(id, ACME);
    await expect(
      service.submitFrames(id, ACME, 1, rawUpload(frames(1)), FRAME_BYTES, 'identity'),
    ).rejects.toThrow(ConflictException);
    expect(stored.writes).toBe(0);
  });

  it('delivers a batch that could not be queued as failed, releases its key, and drops its input', async () => {
    const { service, id, queue, streams, idempotency, frames: stored } = await openStream();
    for (let i = 0; i < 8; i++) queue.failures.push(new Error('queue down'));
    await expect(
      service.submitFrames(id, ACME, 1, rawUpload(frames(1)), FRAME_BYTES, 'identity', 'k-3'),
    ).rejects.toThrow('queue down');
    expect(streams.committed).toMatchObject([
      { streamId: id, seq: 0, events: [{ type: 'batch-failed', seq: 0, error: 'not queued: queue down' }] },
    ]);
    expect(idempotency.entries.has(`${id}/k-3`)).toBe(false);
    expect(stored.deleted).toHaveLength(1);
  });
});

describe('StreamsService.close', () => {
  it('unpins a live stream once everything it acknowledged is delivered', async () => {
    const { service, live } = await setUp();
    live.placement = { node: 'cpu-1', atCapacity: false };
    const { id } = await service.create(body({ codec: 'h264', mode: 'live' }), 'acme');
    await expect(service.close(id, ACME)).resolves.toMatchObject({ state: 'closed' });
    expect(live.unpinned).toEqual([id]);
  });
});

describe('StreamsService.sessionOutput', () => {
  it("serves a session's packet by frame with the codec's content type, to the stream's tenant only", async () => {
    const { service, outputs, live } = await setUp();
    live.placement = { node: 'cpu-1', atCapacity: false };
    const view = await service.create(body({ codec: 'h264', mode: 'live' }), 'acme');
    outputs.outputs.set(`${view.id}.live/3`, Buffer.from([0, 0, 0, 1, 0x65]));
    expect(await service.sessionOutput(view.id, 3, ACME)).toEqual({
      contentType: 'video/h264',
      data: Buffer.from([0, 0, 0, 1, 0x65]),
    });
    expect(await failure(service.sessionOutput(view.id, 4, ACME))).toBeInstanceOf(NotFoundException);
    expect(await failure(service.sessionOutput(view.id, 3, OTHER))).toBeInstanceOf(NotFoundException);
  });
});
