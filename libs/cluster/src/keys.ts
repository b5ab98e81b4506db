import { liveSessionStreamOf } from '#contracts/live-session.js';

/**
 * Redis key names. Queue keys share one hash tag (`{prefix}`) as BullMQ requires on Redis Cluster;
 * a job's own keys share the job's tag so that the event-log script touches one slot, and different
 * jobs spread over the cluster.
 */
export class KeySpace {
  constructor(readonly prefix: string) {}

  /** BullMQ's `prefix` option. */
  get queuePrefix(): string {
    return `{${this.prefix}}`;
  }

  private job(jobId: string): string {
    return `${this.prefix}:job:{${jobId}}`;
  }

  jobRecord(jobId: string): string {
    return this.job(jobId);
  }

  frame(jobId: string, index: number): string {
    return `${this.job(jobId)}:frame:${index}`;
  }

  /** How many of the job's frames are stored whole (only while they arrive: EncodeJobInput.arriving). */
  landed(jobId: string): string {
    return `${this.job(jobId)}:landed`;
  }

  /** Compressed uploads are stored as they came, in chunks, and decompressed on the node. */
  inputChunk(jobId: string, index: number): string {
    return `${this.job(jobId)}:in:${index}`;
  }

  output(jobId: string, index: number): string {
    const session = liveSessionStreamOf(jobId);
    if (session) return this.sessionOutput(session, index);
    return `${this.job(jobId)}:out:${index}`;
  }

  /**
   * A live session's output of one frame (job id `<stream>.live`, index = frame): in the stream's slot,
   * so that the script committing the frame stores its bytes only if the node still holds the stream
   * (on Redis Cluster too); a fenced-out node can never overwrite what its successor logged.
   */
  sessionOutput(streamId: string, frame: number): string {
    return `${this.stream(streamId)}:out:${frame}`;
  }

  events(jobId: string): string {
    return `${this.job(jobId)}:events`;
  }

  emitted(jobId: string): string {
    return `${this.job(jobId)}:emitted`;
  }

  idempotency(clientId: string, key: string): string {
    return `${this.prefix}:idem:${clientId}:${key}`;
  }

  /** Which client submitted a job (to take it out of the client's set when it finishes). */
  jobClient(jobId: string): string {
    return `${this.job(jobId)}:client`;
  }

  /** The unfinished jobs of one client (API key or address), for the per-client limit. */
  clientJobs(clientId: string): string {
    return `${this.prefix}:client:${clientId}:jobs`;
  }

  /** One pub/sub channel for all job events: the API needs a single subscription for any number of clients. */
  get eventsChannel(): string {
    return `${this.prefix}:events`;
  }

  /** Job ids cancelled by their clients, for the node that may be encoding them. */
  get cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }

  private stream(streamId: string): string {
    return `${this.prefix}:stream:{${streamId}}`;
  }

  streamRecord(streamId: string): string {
    return this.stream(streamId);
  }

  /** Batches encoded ahead of an earlier one, waiting for their turn (the reorder buffer). */
  streamPending(streamId: string): string {
    return `${this.stream(streamId)}:pending`;
  }

  /** The stream's delivered events, in order: what SSE and WebSocket clients read and resume from. */
  streamLog(streamId: string): string {
    return `${this.stream(streamId)}:log`;
  }

  /** Streams not ended yet, for the stall check. */
  get openStreams(): string {
    return `${this.prefix}:streams:open`;
  }

  /** The batch an Idempotency-Key got in a stream (in the stream's slot, so it is set with the batch). */
  streamBatchKey(streamId: string, idempotencyKey: string): string {
    return `${this.stream(streamId)}:idem:${idempotencyKey}`;
  }

  /** Open live streams and their nodes (a hash), for the supervisor that moves them off dead nodes. */
  get liveStreams(): string {
    return `${this.prefix}:streams:live`;
  }

  /**
   * When each open live stream last got a batch (or was created), a sorted set: a stream idle longer
   * than its node's idle timeout holds no encoder there, so it does not count against the capacity.
   */
  get liveActivity(): string {
    return `${this.prefix}:streams:live:seen`;
  }

  /** Nodes that have (or had) live streams, hence a queue of their own to look after. */
  get liveNodes(): string {
    return `${this.prefix}:streams:nodes`;
  }

  /** Live streams moved to another node, cluster-wide, by reason (a hash: reason -> count). */
  get liveMoveCounts(): string {
    return `${this.prefix}:streams:live:moves`;
  }

  /** The live streams pinned to one node (its load, for placing new streams). */
  nodeStreams(nodeId: string): string {
    return `${this.prefix}:node:${nodeId}:streams`;
  }

  get streamEventsChannel(): string {
    return `${this.prefix}:stream-events`;
  }

  node(nodeId: string): string {
    return `${this.prefix}:node:${nodeId}`;
  }

  /** A dashboard session that is open: its cookie is honoured only while this key exists. */
  adminSession(sessionId: string): string {
    return `${this.prefix}:admin:session:${sessionId}`;
  }

  /** Who runs the cluster chores (GPU fallback, live supervisor, stream stall check): one API at a time. */
  get choresLease(): string {
    return `${this.prefix}:chores:leader`;
  }

  /** Loopback clusters without CLUSTER_SECRETS: the session-token secret the API and nodes share. */
  get clusterSecret(): string {
    return `${this.prefix}:cluster-secret`;
  }

  get nodesIndex(): string {
    return `${this.prefix}:nodes`;
  }
}
