import http from 'node:http';

export interface HttpReply {
  status: number;
  body: string;
}

/**
 * POSTs `parts` as one body, written to the socket one after the other: no concatenation and no copy
 * of the frames in the client (`fetch` copies a Buffer body before sending it: see the stage
 * measurements), so that the bench's own client costs as little CPU as a client can.
 */
export function postParts(
  url: string,
  parts: Buffer[],
  headers: Record<string, string>,
  agent: http.Agent,
): Promise<HttpReply> {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': String(length) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      // A server that answers before reading the whole body (an error status) and closes the
      // connection breaks the upload; its answer, when it got through, says why.
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') return reject(error);
      const timer = setTimeout(
        () => reject(new Error(`the server closed the connection during the upload (${error.code})`)),
        2000,
      );
      request.once('response', () => clearTimeout(timer));
    });
    for (const part of parts) request.write(part);
    request.end();
  });
}

/** An HTTP server that reads and drops request bodies, answering 202 with a job-like JSON body. */
export async function startSink(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(202, { 'content-type': 'application/json' });
      response.end('{"id":"sink","status":"queued"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('sink: no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
