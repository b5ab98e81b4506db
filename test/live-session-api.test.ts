import WebSocket from 'ws';
import { SessionTokens } from '#cluster';
import { rgbaToPixelFormat, syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import type { LiveSessionServerMessage, NodeRecord, SessionTokenClaims, StreamView } from '#contracts';
import { ServiceStack } from '#scripts/lib/stack.js';
import { tempDir, waitUntil } from './support.js';
import { expectVideoOf } from './stream-support.js';

/**
 * The API side of live sessions, against real processes: the session grant of a live stream, the
 * failover report (`?unreachable=`) that moves a stream off a killed node at once, and the API's relay
 * of the session (bytes socket to socket), with the answers bad requests get.
 */
const KEY = 'live-session-key-0123456789';
/** Another tenant's key: it sees none of KEY's streams. */
const OTHER_KEY = 'other-tenant-key-0123456789';
const SECRET = 'live-session-cluster-secret-0123456789abcdef';
// Registry records outlive a killed node by this long: a move seen before then was the probe's doing.
const NODE_TIMEOUT_S = 10;
const WIDTH = 160;
const HEIGHT = 120;
/** Frames and their bgra bytes, built before any connection is pooled (PITFALLS.md, "Sockets and tests"). */
const INPUTS = Array.from({ length: 24 }, (_, index) => syntheticRgba(WIDTH, HEIGHT, index, false));
const BGRA = INPUTS.map((rgba) => rgbaToPixelFormat(rgba, 'bgra'));

const auth = { authorization: `Bearer ${KEY}` };

interface SessionEnd {
  code: number;
  reason: string;
}

/** A session client on the wire: what the server sent, in order, and how the socket ended. */
class WireSession {
  readonly texts: LiveSessionServerMessage[] = [];
  readonly packets: Buffer[] = [];
  readonly ended: Promise<SessionEnd>;
  readonly opened: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_, response) =>
        reject(new Error(`upgrade refused: ${response.statusCode}`)),
      );
      ws.once('error', reject);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.packets.push(data);
      else this.texts.push(JSON.parse(data.toString()) as LiveSessionServerMessage);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.ended = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const wake of this.waiters.splice(0)) wake();
      }),
    );
  }

  async until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`session closed waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 500);
      });
    }
  }

  outputs() {
    return this.texts.filter((message) => message.type === 'output');
  }
}

/** How a refused upgrade was answered. */
async function refusal(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`${url} opened`));
    });
    ws.once('error', (error) => reject(error));
  });
}

describe('live sessions on the API', () => {
  let stack: ServiceStack;
  let api: string;
  const dir = tempDir('encoder-live-session-api-');
  const tokens = new SessionTokens([SECRET]);
  let spares = 0;

  const call = async <T>(path: string, init: RequestInit = {}) => {
    const response = await fetch(`${api}${path}`, { ...init, headers: { ...auth, ...init.headers } });
    return { status: response.status, body: (await response.json()) as T, headers: response.headers };
  };
  /** POST /v1/streams of an h264 batch stream of bgra frames, unless `fields` say otherwise. */
  const postStream = <T>(fields: Record<string, unknown>) =>
    call<T>('/v1/streams', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ codec: 'h264', width: WIDTH, height: HEIGHT, format: 'bgra', ...fields }),
    });
  const createLive = async (extra: Record<string, unknown> = {}) => {
    const { status, body } = await postStream<StreamView>({ mode: 'live', ...extra });
    if (status !== 201) throw new Error(`create: ${status} ${JSON.stringify(body)}`);
    return body;
  };
  const claimsOf = (view: StreamView) => tokens.verify(view.session?.token) as SessionTokenClaims;
  const nodes = async () => (await call<NodeRecord[]>('/v1/nodes')).body;
  /** Kills a node with -9, and starts another in its place once the registry has let the dead one go. */
  const killNode = async (nodeId: string) => {
    const node = (await nodes()).find((candidate) => candidate.id === nodeId)!;
    expect(await stack.signalWorker(node.name, 'SIGKILL')).toBeNull();
    return node;
  };
  const replaceNode = async (killed: string) => {
    await waitUntil(async () => !(await nodes()).some((node) => node.id === killed), 60_000, 'expiry');
    await stack.startWorker({ name: `spare-${++spares}`, timeoutSeconds: NODE_TIMEOUT_S });
  };

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      env: { API_KEYS: `acme:${KEY},other:${OTHER_KEY}`, CLUSTER_SECRETS: SECRET },
      workers: [
        { name: 'node-a', timeoutSeconds: NODE_TIMEOUT_S },
        { name: 'node-b', timeoutSeconds: NODE_TIMEOUT_S },
      ],
    });
    api = stack.apiUrl;
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it("a live stream's 201 and GET carry its session: a token that names stream, node and epoch", async () => {
    const registry = await nodes();
    expect(registry.every((node) => /^wss?:\/\/127\.0\.0\.1:\d+$/.test(node.dataUrl ?? ''))).toBe(true);
    const created = await createLive();
    const node = registry.find((candidate) => candidate.id === created.node)!;
    expect(created.session).toMatchObject({
      url: `${node.dataUrl}/v1/streams/${created.id}/session`,
      node: node.id,
      relayUrl: `${api.replace(/^http/, 'ws')}/v1/streams/${created.id}/session`,
    });
    expect(claimsOf(created)).toMatchObject({ stream: created.id, node: node.id, epoch: 0 });
    expect(Date.parse(created.session!.expiresAt)).toBe(claimsOf(created).exp);
    const again = (await call<StreamView>(`/v1/streams/${created.id}`)).body;
    expect(claimsOf(again)).toMatchObject({ stream: created.id, node: node.id, epoch: 0 });
    // A batch stream has none; a closed live stream has none any more.
    const batch = (await postStream<StreamView>({})).body;
    expect(batch.session).toBeUndefined();
    expect(
      (await call<StreamView>(`/v1/streams/${created.id}`, { method: 'DELETE' })).body.session,
    ).toBeUndefined();
  });

  it('a session through the relay gives one output per frame, decodable as the frames sent', async () => {
    const stream = await createLive();
    const session = new WireSession(new WebSocket(`${stream.session!.relayUrl}?since=-1`, { headers: auth }));
    await session.opened;
    await session.until(() => session.texts.length > 0, 'ready');
    const ready = session.texts[0];
    expect(ready).toMatchObject({ type: 'ready', node: stream.node, nextFrame: 0 });
    const window = ready.type === 'ready' ? ready.window : 1;
    for (let index = 0; index < BGRA.length; index++) {
      await session.until(() => index - session.outputs().length < window, `room for frame ${index}`);
      session.ws.send(BGRA[index]);
    }
    await session.until(() => session.packets.length === BGRA.length, 'every output');
    const outputs = session.outputs();
    expect(outputs.map((output) => output.type === 'output' && output.frame)).toEqual(
      BGRA.map((_, index) => index),
    );
    expect(outputs.filter((output) => output.type === 'output' && output.keyframe)).toHaveLength(1);
    await expectVideoOf(Buffer.concat(session.packets), INPUTS, WIDTH, HEIGHT);
    const relays = async () =>
      /^encoder_session_relays (\d+)$/m.exec(
        await (await fetch(`${api}/metrics`, { headers: auth })).text(),
      )?.[1];
    expect(await relays()).toBe('1');
    session.ws.close(1000);
    expect((await session.ended).code).toBe(1000);
    await waitUntil(async () => (await relays()) === '0', 10_000, 'the relay to be counted closed');
    // The outputs are the stream's log too.
    expect((await call<StreamView>(`/v1/streams/${stream.id}`)).body.frames).toBe(BGRA.length);
  });

  it('the relay closes its client with 4409 when the node dies under it', async () => {
    const stream = await createLive();
    const session = new WireSession(new WebSocket(stream.session!.relayUrl, { headers: auth }));
    await session.opened;
    await session.until(() => session.texts.some((message) => message.type === 'ready'), 'ready');
    session.ws.send(BGRA[0]);
    await session.until(() => session.packets.length === 1, 'the first output');
    await killNode(stream.node!);
    const end = await session.ended;
    expect(end.code).toBe(4409);
    expect(end.reason).toMatch(/ask GET \/v1\/streams\/.*\?unreachable=/);
    await replaceNode(stream.node!);
  });

  it('?unreachable= of a live node moves nothing; of a killed node moves the stream at once, with a new grant', async () => {
    const stream = await createLive();
    const first = stream.node!;
    const live = (await call<StreamView>(`/v1/streams/${stream.id}?unreachable=${first}`)).body;
    expect(live.node).toBe(first);
    expect(claimsOf(live)).toMatchObject({ node: first, epoch: 0 });
    // A node that is not the stream's: the current view, nothing probed or moved.
    const other = (await nodes()).find((node) => node.id !== first)!;
    expect((await call<StreamView>(`/v1/streams/${stream.id}?unreachable=${other.id}`)).body.node).toBe(
      first,
    );

    await killNode(first);
    // Its registry record outlives it by NODE_TIMEOUT_S: the move comes from the probe, not from expiry.
    expect((await nodes()).some((node) => node.id === first)).toBe(true);
    const moved = await call<StreamView>(`/v1/streams/${stream.id}?unreachable=${first}`);
    expect(moved.status).toBe(200);
    expect(moved.body.node).not.toBe(first);
    expect(moved.body.node).toBe(other.id);
    expect(claimsOf(moved.body)).toMatchObject({ stream: stream.id, node: other.id, epoch: 1 });
    expect(moved.body.session?.url).toBe(`${other.dataUrl}/v1/streams/${stream.id}/session`);
    // A second report of the same node (another client, late) finds the stream moved: no second move.
    const late = (await call<StreamView>(`/v1/streams/${stream.id}?unreachable=${first}`)).body;
    expect(claimsOf(late)).toMatchObject({ node: other.id, epoch: 1 });
    // The dead node's registry record is still there, with no stream on it: no new stream goes to it.
    expect((await nodes()).some((node) => node.id === first)).toBe(true);
    expect((await createLive()).node).toBe(other.id);
    // The session on the new node opens (the old token is stale there).
    const session = new WireSession(
      new WebSocket(moved.body.session!.url, {
        headers: { authorization: `Bearer ${moved.body.session!.token}` },
      }),
    );
    await session.opened;
    await session.until(() => session.texts.some((message) => message.type === 'ready'), 'ready');
    session.ws.close(1000);
    await session.ended;
    const metrics = await (await fetch(`${api}/metrics`, { headers: auth })).text();
    expect(metrics).toMatch(/encoder_live_stream_moves_total\{reason="unreachable"\} [1-9]/);
    expect(metrics).toMatch(/encoder_session_node_probe_seconds_count\{result="silent"\} [1-9]/);
    await replaceNode(first);
  });

  it("the relay refuses before the upgrade: wrong key 401, unknown or another tenant's stream 404, batch stream 409, ended 410, bad since 400", async () => {
    const ws = api.replace(/^http/, 'ws');
    const live = await createLive();
    const relay = `${ws}/v1/streams/${live.id}/session`;
    expect((await refusal(relay, { authorization: 'Bearer wrong-key-0123456789' })).status).toBe(401);
    expect((await refusal(relay, {})).status).toBe(401);
    // Another tenant's key: the stream is as unknown to it, on the relay and in a failover report.
    const foreign = await refusal(relay, { authorization: `Bearer ${OTHER_KEY}` });
    expect(foreign.status).toBe(404);
    const foreignReport = await fetch(`${api}/v1/streams/${live.id}?unreachable=${live.node}`, {
      headers: { authorization: `Bearer ${OTHER_KEY}` },
    });
    expect(foreignReport.status).toBe(404);
    const unknown = await refusal(`${ws}/v1/streams/sAAAAAAAAAAAAAAAA/session`, auth);
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toMatchObject({
      statusCode: 404,
      message: expect.stringMatching(/no stream/),
    });
    expect((await refusal(`${relay}?since=x`, auth)).status).toBe(400);
    expect((await refusal(`${relay}?since=-2`, auth)).status).toBe(400);
    const batch = (await postStream<StreamView>({})).body;
    const batchAnswer = await refusal(`${ws}/v1/streams/${batch.id}/session`, auth);
    expect(batchAnswer.status).toBe(409);
    expect(JSON.parse(batchAnswer.body).message).toMatch(/batch stream: sessions are for live streams/);
    await call(`/v1/streams/${live.id}`, { method: 'DELETE' });
    const ended = await refusal(relay, auth);
    expect(ended.status).toBe(410);
    expect(JSON.parse(ended.body)).toMatchObject({ statusCode: 410, error: 'Gone' });
  });

  it('checks ?unreachable= and compression: 400 with what to fix', async () => {
    const live = await createLive({ compression: 'lz4' });
    expect(live.compression).toBe('lz4');
    const bad = await call<{ message: string }>(`/v1/streams/${live.id}?unreachable=no%20such%20node`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/unreachable must be a node id/);
    const unknownParam = await call<{ message: string }>(`/v1/streams/${live.id}?unreachable=x&extra=1`);
    expect(unknownParam.status).toBe(400);
    const wrongCompression = await postStream<{ message: string }>({ mode: 'live', compression: 'zstd' });
    expect(wrongCompression.status).toBe(400);
    expect(wrongCompression.body.message).toMatch(/compression must be one of none, lz4/);
    const batchCompression = await postStream<{ message: string }>({ compression: 'lz4' });
    expect(batchCompression.status).toBe(400);
    expect(batchCompression.body.message).toMatch(/compression is for live sessions/);
    const docs = (await call<{ paths: Record<string, unknown> }>('/docs-json')).body;
    expect(Object.keys(docs.paths)).toContain('/v1/streams/{id}/session');
  });
});

describe('live placement with a node that has no data port', () => {
  let stack: ServiceStack;
  const dir = tempDir('encoder-live-session-port-');

  beforeAll(async () => {
    stack = await ServiceStack.start({
      dataDir: dir.path,
      // Equal load: by name alone the node without a port would be first.
      workers: [{ name: 'a-without-port', bind: null }, { name: 'b-with-port' }],
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  it('places live streams on a node with a data port, so that they have a session', async () => {
    for (let index = 0; index < 3; index++) {
      const response = await fetch(`${stack.apiUrl}/v1/streams`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ codec: 'h264', mode: 'live', width: WIDTH, height: HEIGHT, format: 'bgra' }),
      });
      const view = (await response.json()) as StreamView;
      expect(view.session?.node).toBe(view.node);
    }
    const nodes = await stack.client.nodes();
    expect(nodes.find((node) => node.name === 'a-without-port')?.dataUrl).toBeUndefined();
  });
});
