import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NodeRegistry, StreamRecord, StreamStore } from '#cluster';
import type { NodeRecord } from '#contracts';
import { RetryLaterException } from '../common/http-errors.js';
import { loadApiConfig } from '../config/api-config.js';
import { liveNode } from '../testing/fakes.js';
import { DataPortProbe, LiveFailover } from './live-failover.js';
import type { LiveMoveReason, LiveStreams } from './live-streams.js';

function liveRecord(fields: Partial<StreamRecord> = {}): StreamRecord {
  return {
    id: 'sAAAAAAAAAAAAAAAA',
    params: {
      codec: 'h264',
      mode: 'live',
      pool: 'cpu',
      width: 64,
      height: 48,
      format: 'bgra',
      quality: 80,
      speed: 70,
      fps: 30,
      keyframeInterval: 300,
    },
    state: 'open',
    nextSeq: 0,
    cursor: 0,
    frames: 12,
    lastEventId: 12,
    node: 'node-a',
    epoch: 0,
    createdAt: 0,
    tenant: null,
    ...fields,
  };
}

function withDataUrl(id: string, dataUrl?: string): NodeRecord {
  return { ...liveNode(id, 'cpu', ['h264']), id, dataUrl };
}

/** The registry, store, placement and probe of a failover, in memory. */
function setUp(options: { nodes?: NodeRecord[]; answering?: string[]; moveTo?: string | null } = {}) {
  const nodes = new Map(
    (options.nodes ?? [withDataUrl('node-a', 'ws://a.example:7000')]).map((n) => [n.id, n]),
  );
  let record = liveRecord();
  const moves: { from: string | null; reason: LiveMoveReason }[] = [];
  const probes: string[] = [];
  let release: (() => void) | null = null;
  const registry = { get: (id: string) => Promise.resolve(nodes.get(id) ?? null) };
  const streams = { get: () => Promise.resolve({ ...record }) };
  const silent: string[] = [];
  const live = {
    markSilent: (nodeId: string) => silent.push(nodeId),
    move: (moved: StreamRecord, reason: LiveMoveReason) => {
      moves.push({ from: moved.node, reason });
      const to = options.moveTo === undefined ? 'node-b' : options.moveTo;
      if (to) record = { ...record, node: to, epoch: record.epoch + 1 };
      return Promise.resolve(to);
    },
  };
  const probe = {
    hold: false,
    answers: async (dataUrl: string, nodeId: string) => {
      probes.push(`${nodeId}@${dataUrl}`);
      if (probe.hold) await new Promise<void>((resolve) => (release = resolve));
      return (options.answering ?? []).includes(nodeId);
    },
  };
  const failover = new LiveFailover(
    loadApiConfig({}),
    registry as unknown as NodeRegistry,
    streams as unknown as StreamStore,
    live as unknown as LiveStreams,
    probe as unknown as DataPortProbe,
  );
  return {
    failover,
    moves,
    silent,
    probes,
    probe,
    release: () => release?.(),
  };
}

describe('LiveFailover.reportUnreachable', () => {
  it('moves the stream at once (epoch + 1) when its node does not answer the probe', async () => {
    const { failover, moves, probes, silent } = setUp();
    const after = await failover.reportUnreachable(liveRecord(), 'node-a');
    expect(probes).toEqual(['node-a@ws://a.example:7000']);
    expect(moves).toEqual([{ from: 'node-a', reason: 'unreachable' }]);
    // No stream is placed on it while its registry record outlives it.
    expect(silent).toEqual(['node-a']);
    expect(after).toMatchObject({ node: 'node-b', epoch: 1 });
  });

  it('leaves the stream where it is when the node answers', async () => {
    const { failover, moves, silent } = setUp({ answering: ['node-a'] });
    const after = await failover.reportUnreachable(liveRecord(), 'node-a');
    expect(moves).toEqual([]);
    expect(silent).toEqual([]);
    expect(after).toMatchObject({ node: 'node-a', epoch: 0 });
  });

  it('moves without a probe when the node has left the registry', async () => {
    const { failover, moves, probes } = setUp({ nodes: [] });
    expect(await failover.reportUnreachable(liveRecord(), 'node-a')).toMatchObject({ node: 'node-b' });
    expect(probes).toEqual([]);
    expect(moves).toHaveLength(1);
  });

  it('takes the registry at its word for a node that has no data port to probe', async () => {
    const { failover, moves, probes } = setUp({ nodes: [withDataUrl('node-a')] });
    expect(await failover.reportUnreachable(liveRecord(), 'node-a')).toMatchObject({ node: 'node-a' });
    expect(probes).toEqual([]);
    expect(moves).toEqual([]);
  });

  it('ignores a report of a node the stream is not on, and of a batch or ended stream: no probe, no move', async () => {
    const { failover, moves, probes } = setUp();
    const moved = liveRecord({ node: 'node-b', epoch: 1 });
    expect(await failover.reportUnreachable(moved, 'node-a')).toBe(moved);
    const batch = liveRecord({ params: { ...liveRecord().params, mode: 'batch' }, node: null });
    expect(await failover.reportUnreachable(batch, 'node-a')).toBe(batch);
    const ended = liveRecord({ state: 'ended' });
    expect(await failover.reportUnreachable(ended, 'node-a')).toBe(ended);
    expect(probes).toEqual([]);
    expect(moves).toEqual([]);
  });

  it('answers 503 with Retry-After when the node is silent and no other node can take the stream', async () => {
    const { failover } = setUp({ moveTo: null });
    const error = await failover.reportUnreachable(liveRecord(), 'node-a').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryLaterException);
    expect((error as RetryLaterException).retryAfterSeconds).toBe(1);
    expect((error as Error).message).toMatch(/node node-a does not answer and no other live node can take/);
  });

  it('shares one probe among the reports that arrive while it runs', async () => {
    const setup = setUp();
    setup.probe.hold = true;
    const first = setup.failover.reportUnreachable(liveRecord(), 'node-a');
    const second = setup.failover.reportUnreachable(liveRecord({ id: 'sBBBBBBBBBBBBBBBB' }), 'node-a');
    await new Promise((resolve) => setTimeout(resolve, 10));
    setup.release();
    await Promise.all([first, second]);
    expect(setup.probes).toHaveLength(1);
    expect(setup.moves).toHaveLength(2);
    // The next report probes afresh.
    const third = setup.failover.reportUnreachable(liveRecord(), 'node-a');
    await new Promise((resolve) => setTimeout(resolve, 10));
    setup.release();
    await third;
    expect(setup.probes).toHaveLength(2);
  });
});

describe('DataPortProbe', () => {
  const probe = new DataPortProbe();
  let server: Server;
  let url: string;
  let answer: (path: string) => { status: number; body: string } | null;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const reply = answer(request.url ?? '');
      if (!reply) return; // never answers
      response.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is answered by a 200 that names the node, at /healthz', async () => {
    answer = (path) => (path === '/healthz' ? { status: 200, body: '{"node":"node-a"}' } : null);
    expect(await probe.answers(url, 'node-a', 2000)).toBe(true);
  });

  it('is not answered by another node, an error status, a body that is not JSON, or a huge body', async () => {
    answer = () => ({ status: 200, body: '{"node":"node-b"}' });
    expect(await probe.answers(url, 'node-a', 2000)).toBe(false);
    answer = () => ({ status: 503, body: '{"node":"node-a"}' });
    expect(await probe.answers(url, 'node-a', 2000)).toBe(false);
    answer = () => ({ status: 200, body: 'node-a' });
    expect(await probe.answers(url, 'node-a', 2000)).toBe(false);
    answer = () => ({ status: 200, body: JSON.stringify({ node: 'node-a', pad: 'x'.repeat(10_000) }) });
    expect(await probe.answers(url, 'node-a', 2000)).toBe(false);
  });

  it('gives up after its timeout on a port that accepts and never answers, and at once on a closed one', async () => {
    answer = () => null;
    expect(await probe.answers(url, 'node-a', 200)).toBe(false);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    expect(await probe.answers(`ws://127.0.0.1:${port}`, 'node-a', 5000)).toBe(false);
    expect(await probe.answers('not a url', 'node-a', 5000)).toBe(false);
    expect(await probe.answers('tcp://127.0.0.1:1', 'node-a', 5000)).toBe(false);
  });
});
