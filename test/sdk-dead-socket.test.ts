import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { EncoderApiClient, nodeHttpTransport } from '#client';

/**
 * The keep-alive race of a busy client, reproduced with real sockets: a server in another process closes
 * an idle pooled connection while the client's event loop is blocked, so the client never hears of it
 * and writes its next request into the dead socket. The SDK sends such a request once more on a fresh
 * connection when that is safe (an idempotent method, or an Idempotency-Key), and only then.
 */
const SERVER = `
const http = require('node:http');
const seen = {};
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const key = req.headers['idempotency-key'] || '';
    seen[key] = (seen[key] || 0) + 1;
    res.writeHead(req.method === 'POST' ? 202 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'job-1', status: 'queued', timesSeen: seen[key] }));
    // Its own idle timeout, short and unannounced (no Keep-Alive header for the client's agent to heed).
    setTimeout(() => req.socket.destroy(), 100);
  });
});
server.keepAliveTimeout = 0;
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

/** Blocks this process's event loop, as a test building frames synchronously does. */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('SDK over a pooled connection the server closed', () => {
  let server: ChildProcess;
  let base: string;

  beforeAll(async () => {
    server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [port] = (await once(server.stdout!, 'data')) as [Buffer];
    base = `http://127.0.0.1:${port.toString().trim()}`;
  });

  afterAll(() => {
    server?.kill();
  });

  /** Pools a connection, lets the server close it while the loop is blocked, then sends `request`. */
  async function afterStaleConnection<T>(request: () => Promise<T>): Promise<T> {
    const first = await nodeHttpTransport({ method: 'GET', url: `${base}/warm`, timeoutMs: 5000 });
    await readAll(first.body);
    blockEventLoop(500);
    return request();
  }

  const post = (headers: Record<string, string>) => () =>
    nodeHttpTransport({
      method: 'POST',
      url: `${base}/v1/jobs`,
      headers: { 'content-type': 'application/octet-stream', ...headers },
      body: Buffer.alloc(1024),
      timeoutMs: 5000,
    });

  it('the race is real: a POST without an Idempotency-Key fails on the dead socket and is not sent again', async () => {
    await expect(afterStaleConnection(post({}))).rejects.toMatchObject({
      message: expect.stringMatching(/socket hang up|ECONNRESET|EPIPE/),
    });
  });

  it('a POST with an Idempotency-Key is sent again on a fresh connection, and arrives once', async () => {
    const response = await afterStaleConnection(post({ 'idempotency-key': 'key-1' }));
    expect(response.status).toBe(202);
    const body = JSON.parse((await readAll(response.body)).toString()) as { timesSeen: number };
    expect(body.timesSeen).toBe(1);
  });

  it('a GET is sent again', async () => {
    const response = await afterStaleConnection(() =>
      nodeHttpTransport({ method: 'GET', url: `${base}/v1/jobs/job-1`, timeoutMs: 5000 }),
    );
    expect(response.status).toBe(200);
    response.cancel();
  });

  it('EncoderApiClient.submitRaw keys every submission, so it survives the race', async () => {
    const client = new EncoderApiClient(base);
    const accepted = await afterStaleConnection(() =>
      client.submitRaw(
        { codec: 'jpeg', width: 16, height: 16, format: 'bgra', frames: 1 },
        Buffer.alloc(1024),
      ),
    );
    expect(accepted).toMatchObject({ id: 'job-1', status: 'queued' });
  });
});

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}
