import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { NodeRegistry, StreamStore, type StreamRecord } from '#cluster';
import { DATA_PORT_HEALTH_PATH } from '#contracts';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { RetryLaterException } from '../common/http-errors.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { LiveStreams } from './live-streams.js';

/** A health answer is `{ "node": "<id>" }`: anything much longer is not one. */
const MAX_HEALTH_BYTES = 4096;

/** Asks a node's data port whether that node is there: `GET <dataUrl>/healthz`, 200 `{ node }`. */
@Injectable()
export class DataPortProbe {
  /** Whether the port answered 200 naming `nodeId` within `timeoutMs`; never throws. */
  answers(dataUrl: string, nodeId: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let url: URL;
      try {
        url = new URL(DATA_PORT_HEALTH_PATH, dataUrl.replace(/^ws/i, 'http'));
      } catch {
        return resolve(false);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return resolve(false);
      const settle = (answered: boolean) => {
        clearTimeout(timer);
        resolve(answered);
        request.destroy();
      };
      const onResponse = (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_HEALTH_BYTES) return settle(false);
          chunks.push(chunk);
        });
        response.on('end', () => settle(response.statusCode === 200 && namedIn(chunks, nodeId)));
        response.on('error', () => settle(false));
      };
      // The probe asks whether the process is there, not whether its certificate is one this API
      // trusts: a node with a certificate the API cannot verify still answers (the relay, which carries
      // frames, verifies it). No pooled socket: a dead node's would be the one reused.
      const request =
        url.protocol === 'https:'
          ? httpsGet(url, { agent: false, rejectUnauthorized: false }, onResponse)
          : httpGet(url, { agent: false }, onResponse);
      const timer = setTimeout(() => settle(false), timeoutMs);
      request.on('error', () => settle(false));
    });
  }
}

function namedIn(chunks: Buffer[], nodeId: string): boolean {
  try {
    return (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { node?: unknown }).node === nodeId;
  } catch {
    return false;
  }
}

/**
 * A client's report that it cannot reach its stream's node (`GET /v1/streams/:id?unreachable=<node>`):
 * the API asks the node's data port at once and, if it does not answer in time, moves the stream to
 * another node (LiveStreams.move: compare-and-set, epoch + 1), without waiting for the node's registry
 * record to expire (the supervisor's backstop). Many clients of one dying node report it together: they
 * share one probe.
 */
@Injectable()
export class LiveFailover {
  private readonly probing = new Map<string, Promise<boolean>>();

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly registry: NodeRegistry,
    private readonly streams: StreamStore,
    private readonly live: LiveStreams,
    private readonly probe: DataPortProbe,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /**
   * The stream's record after the report: moved when `nodeId` is its node and does not answer; as it
   * was when the node answers, or when the stream is elsewhere already (moved by someone else) or is not
   * a live stream still running. 503 + Retry-After when the node is silent and no other node can take it.
   */
  async reportUnreachable(record: StreamRecord, nodeId: string): Promise<StreamRecord> {
    if (record.params.mode !== 'live' || record.state === 'ended' || record.node !== nodeId) return record;
    if (await this.answers(nodeId)) return record;
    this.live.markSilent(nodeId);
    const now = await this.live.move(record, 'unreachable');
    if (now === null) {
      throw new RetryLaterException(
        `node ${nodeId} does not answer and no other live node can take ${record.params.codec} stream ${record.id} now`,
        1,
      );
    }
    return (await this.streams.get(record.id)) ?? record;
  }

  private answers(nodeId: string): Promise<boolean> {
    let answer = this.probing.get(nodeId);
    if (!answer) {
      answer = this.check(nodeId).finally(() => this.probing.delete(nodeId));
      this.probing.set(nodeId, answer);
    }
    return answer;
  }

  private async check(nodeId: string): Promise<boolean> {
    const node = await this.registry.get(nodeId);
    if (!node) return false;
    // A node without a data port has no session to lose; the registry is the only judge of it.
    if (!node.dataUrl) return true;
    const started = performance.now();
    const answered = await this.probe.answers(node.dataUrl, nodeId, this.config.sessions.probeTimeoutMs);
    this.metrics?.nodeProbes.observe(
      { result: answered ? 'answered' : 'silent' },
      (performance.now() - started) / 1000,
    );
    return answered;
  }
}
