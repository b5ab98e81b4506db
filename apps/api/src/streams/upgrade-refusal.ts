import type { Duplex } from 'node:stream';
import { reasonPhrase } from '../common/http-errors.js';

/** Answers an upgrade request with a plain HTTP error in the API's JSON error shape. */
export function refuse(socket: Duplex, status: number, message: string, retryAfterSeconds?: number): void {
  if (socket.destroyed) return;
  const reason = reasonPhrase(status);
  const body = JSON.stringify({ statusCode: status, error: reason, message });
  const retryAfter = retryAfterSeconds === undefined ? '' : `Retry-After: ${retryAfterSeconds}\r\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retryAfter}Connection: close\r\n\r\n${body}`,
  );
}
