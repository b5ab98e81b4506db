import { Injectable } from '@nestjs/common';
import type { Response } from 'express';
import type { JobEvent, StreamEvent } from '#contracts';
import { OutputStore } from '#cluster';
import { outputUrl } from '../jobs/job-view.js';
import { follow } from './event-follower.js';
import { EventLogs } from './event-logs.js';
import { serveSse } from './sse-writer.js';
import { serveWebSocket, type EventSocket } from './websocket-writer.js';

/** What a client gets for a job event: output events also say where to fetch the bytes. */
export function jobEventPayload(jobId: string, event: JobEvent): Record<string, unknown> {
  return event.type === 'output'
    ? { jobId, ...event, url: outputUrl(jobId, event.index) }
    : { jobId, ...event };
}

/** What a client gets for a stream event: output events also say where to fetch the bytes. */
export function streamEventPayload(event: StreamEvent): Record<string, unknown> {
  return event.type === 'output' ? { ...event, url: outputUrl(event.jobId, event.index) } : { ...event };
}

/**
 * Events to clients, one way for jobs and streams: the follower reads the log after `position` (see
 * event-ids.ts) as fast as the writer (SSE or WebSocket) hands events to the client.
 */
@Injectable()
export class EventDelivery {
  constructor(
    private readonly logs: EventLogs,
    private readonly outputs: OutputStore,
  ) {}

  /** A job's events as SSE, until its final event. */
  async jobSse(jobId: string, position: string, response: Response): Promise<void> {
    const signal = abortedOnClose(response);
    await serveSse(response, follow(this.logs.job(jobId), position, signal), (event) =>
      jobEventPayload(jobId, event),
    );
  }

  /** A stream's events as SSE, until its `end`. */
  async streamSse(streamId: string, position: string, response: Response): Promise<void> {
    const signal = abortedOnClose(response);
    await serveSse(response, follow(this.logs.stream(streamId), position, signal), streamEventPayload);
  }

  /** A job's events over a WebSocket, an output's bytes inline after its event, until its final event. */
  jobWebSocket(ws: EventSocket, jobId: string, position: string): Promise<void> {
    return serveWebSocket(ws, (signal) => follow(this.logs.job(jobId), position, signal), {
      payloadOf: (event) => jobEventPayload(jobId, event),
      attachmentOf: (event) => (event.type === 'output' ? this.outputBytes(jobId, event.index) : null),
      endReason: 'end of job',
    });
  }

  /** A stream's events over a WebSocket, an output's bytes inline after its event. */
  streamWebSocket(ws: EventSocket, streamId: string, position: string): Promise<void> {
    return serveWebSocket(ws, (signal) => follow(this.logs.stream(streamId), position, signal), {
      payloadOf: streamEventPayload,
      attachmentOf: (event) => (event.type === 'output' ? this.outputBytes(event.jobId, event.index) : null),
      endReason: 'end of stream',
    });
  }

  /** An output past its retention is empty: the text message before it still says what it was. */
  private async outputBytes(jobId: string, index: number): Promise<Buffer> {
    return (await this.outputs.get(jobId, index)) ?? Buffer.alloc(0);
  }
}

function abortedOnClose(response: Response): AbortSignal {
  const abort = new AbortController();
  response.on('close', () => abort.abort());
  return abort.signal;
}
