import WebSocket from 'ws';
import { decodeVideoToRgb, probeVideo, psnr } from '#codecs/testing/media-check.js';
import { rgbaToRgb } from '#codecs/testing/synthetic-frames.js';
import type { AcceptedBatch, StreamEvent, StreamView } from '#contracts';
import { parseSse } from '#client/sse.js';

/** Plain HTTP helpers for the stream tests: they check the wire contract itself, not the SDK. */

export interface WireEvent {
  id: number | null;
  type: string;
  data: Record<string, unknown> & Partial<StreamEvent>;
}

export async function postJson<T>(url: string, body: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

export async function createStream(apiUrl: string, body: Record<string, unknown>): Promise<StreamView> {
  const { status, body: view } = await postJson<StreamView>(`${apiUrl}/v1/streams`, body);
  if (status !== 201) throw new Error(`create stream: ${status} ${JSON.stringify(view)}`);
  return view;
}

/** A live stream of bgra frames at 30 fps: h264 unless `extra` says otherwise. */
export function createLiveStream(
  apiUrl: string,
  width: number,
  height: number,
  extra: Record<string, unknown> = {},
): Promise<StreamView> {
  return createStream(apiUrl, {
    codec: 'h264',
    mode: 'live',
    width,
    height,
    format: 'bgra',
    fps: 30,
    ...extra,
  });
}

export async function submitFrames(
  apiUrl: string,
  streamId: string,
  frames: Buffer,
  count: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: AcceptedBatch & { message?: string } }> {
  const response = await fetch(`${apiUrl}/v1/streams/${streamId}/frames?frames=${count}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...headers },
    body: frames,
  });
  return { status: response.status, body: (await response.json()) as AcceptedBatch & { message?: string } };
}

/** Reads a stream's SSE until `end` (or `stopAfter` events), from after `lastEventId`. */
export async function readSse(
  apiUrl: string,
  streamId: string,
  options: { lastEventId?: number; stopAfter?: number } = {},
): Promise<WireEvent[]> {
  const abort = new AbortController();
  const response = await fetch(`${apiUrl}/v1/streams/${streamId}/events`, {
    headers: options.lastEventId === undefined ? {} : { 'last-event-id': String(options.lastEventId) },
    signal: abort.signal,
  });
  if (!response.ok || !response.body) throw new Error(`events: ${response.status} ${await response.text()}`);
  const events: WireEvent[] = [];
  try {
    for await (const message of parseSse(response.body)) {
      events.push({
        id: message.id === undefined ? null : Number(message.id),
        type: message.event,
        data: JSON.parse(message.data) as WireEvent['data'],
      });
      if (message.event === 'end' || events.length === options.stopAfter) break;
    }
  } finally {
    abort.abort();
  }
  return events;
}

export interface WsDelivery {
  events: WireEvent[];
  /** The bytes of each output event, by event id. */
  bytes: Map<number, Buffer>;
}

/** Follows a stream's (or a job's) WebSocket until the server closes it after `end` (its final event). */
export function readWs(
  apiUrl: string,
  streamId: string,
  since = 0,
  of: 'streams' | 'jobs' = 'streams',
): Promise<WsDelivery> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${apiUrl.replace(/^http/, 'ws')}/v1/${of}/${streamId}/ws?since=${since}`);
    const delivery: WsDelivery = { events: [], bytes: new Map() };
    let awaitingBytes: number | null = null;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (awaitingBytes === null) return reject(new Error('binary message without an output event'));
        delivery.bytes.set(awaitingBytes, data);
        awaitingBytes = null;
        return;
      }
      const { id, type, ...rest } = JSON.parse(data.toString()) as { id?: number; type: string };
      delivery.events.push({ id: id ?? null, type, data: rest });
      if (type === 'output') awaitingBytes = id ?? null;
    });
    ws.on('close', () => resolve(delivery));
    ws.on('error', reject);
  });
}

/**
 * Decodes a delivered elementary stream and compares it with the frames that went in: the same number
 * of frames, each within `minPsnr` dB of its input.
 */
export async function expectVideoOf(
  encoded: Buffer,
  inputs: Buffer[],
  width: number,
  height: number,
  minPsnr = 30,
) {
  const probe = await probeVideo(encoded);
  if (probe.frames !== inputs.length || probe.width !== width) {
    throw new Error(
      `decoded ${probe.frames} frames of width ${probe.width}, expected ${inputs.length} of ${width}`,
    );
  }
  const decoded = await decodeVideoToRgb(encoded);
  const frameBytes = width * height * 3;
  const scores = inputs.map((input, index) =>
    psnr(rgbaToRgb(input), decoded.subarray(index * frameBytes, (index + 1) * frameBytes)),
  );
  const worst = Math.min(...scores);
  if (!(worst > minPsnr)) throw new Error(`frame ${scores.indexOf(worst)} decodes at ${worst.toFixed(1)} dB`);
  return probe;
}
