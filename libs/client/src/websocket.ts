import WebSocket from 'ws';

/** What a WebSocket connection tells its user. */
export interface WebSocketHandlers {
  onOpen(): void;
  onMessage(data: Buffer, isBinary: boolean): void;
  onPong(): void;
  onClose(code: number, reason: string): void;
  onError(error: Error): void;
  /** The server answered the upgrade with a plain HTTP response (401, 404, 503, ...). */
  onUnexpectedResponse(status: number, headers: Record<string, string>, body: string): void;
}

export interface WebSocketConnection {
  /** A Buffer goes as one binary message, a string as one text message (dropped unless open). */
  send(data: Buffer | string): void;
  ping(): void;
  close(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

export interface WebSocketOptions {
  headers: Record<string, string>;
  handshakeTimeoutMs: number;
  /**
   * Send with an all-zero masking key: `ws` then writes a binary message's bytes as they are (no copy
   * of the payload into a masked buffer, no XOR in JavaScript, and none on a `ws` server either).
   * The random key protects proxies from scripts in a browser that choose their bytes; an SDK
   * sending its own frames is not that, so the live session uses it for multi-megabyte frames.
   */
  zeroMask?: boolean;
}

export type WebSocketConnector = (
  url: string,
  options: WebSocketOptions,
  handlers: WebSocketHandlers,
) => WebSocketConnection;

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The default connector: the `ws` package. */
export const wsConnector: WebSocketConnector = (url, options, handlers) => {
  const socket = new WebSocket(url, {
    headers: options.headers,
    handshakeTimeout: options.handshakeTimeoutMs,
    perMessageDeflate: false,
    maxPayload: 1024 * 1024 * 1024,
    ...(options.zeroMask ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
  });
  socket.on('open', () => handlers.onOpen());
  socket.on('message', (data, isBinary) => handlers.onMessage(toBuffer(data), isBinary));
  socket.on('pong', () => handlers.onPong());
  socket.on('close', (code, reason) => handlers.onClose(code, reason.toString('utf8')));
  socket.on('error', (error) => handlers.onError(error));
  socket.on('unexpected-response', (request, response) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const chunks: Buffer[] = [];
    let reported = false;
    const report = () => {
      if (reported) return;
      reported = true;
      handlers.onUnexpectedResponse(
        response.statusCode ?? 0,
        headers,
        Buffer.concat(chunks).toString('utf8').slice(0, 2000),
      );
      request.destroy();
    };
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', report);
    response.on('error', report);
    response.on('close', report);
  });
  return {
    send: (data) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(data, { binary: typeof data !== 'string' });
    },
    ping: () => {
      if (socket.readyState === WebSocket.OPEN) socket.ping();
    },
    close: () => socket.close(1000),
    terminate: () => socket.terminate(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
};
