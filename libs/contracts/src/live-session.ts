/**
 * Live sessions: a live stream's frames go over one WebSocket straight to the node that holds its
 * encoder, and its packets come back on the same socket (docs/api.md, "Live sessions"). The node's data
 * port and the API's relay speak exactly this protocol.
 */

/** Where a client opens a stream's session: on a node's data port, and on the API (the relay). */
export function liveSessionPath(streamId: string): string {
  return `/v1/streams/${encodeURIComponent(streamId)}/session`;
}

/** A node's data port answers this (200 `{ node }`) so that the API can probe it; it serves nothing else but sessions. */
export const DATA_PORT_HEALTH_PATH = '/healthz';

/** `session` of a live stream's `POST /v1/streams` 201 and `GET /v1/streams/:id`. */
export interface LiveSessionGrant {
  /** `ws://` or `wss://` URL of the session on the pinned node's data port (with the stream's path). */
  url: string;
  /** Good for this stream, on this node, at this epoch, until `expiresAt`. */
  token: string;
  /** ISO time; an open socket is not closed when it passes, a reconnect needs a fresh token. */
  expiresAt: string;
  /** The node the grant is for (the value to report in `?unreachable=`). */
  node: string;
  /** The API's relay of the same session (authenticated with the API key, not the token). */
  relayUrl: string;
}

/** What a session token vouches for (signed with the cluster secret: libs/cluster session-token.ts). */
export interface SessionTokenClaims {
  stream: string;
  node: string;
  /** The stream's epoch when the token was issued: a move (epoch + 1) makes it stale. */
  epoch: number;
  /** Expiry, ms since the epoch. */
  exp: number;
}

/** Text messages the server sends. Binary messages are frames (client) and packets (server). */
export type LiveSessionServerMessage =
  | { type: 'ready'; node: string; nextFrame: number; window: number }
  | {
      type: 'output';
      frame: number;
      keyframe: boolean;
      bytes: number;
      contentType: string;
      /** Present (false) only while Redis is away: the output is not in the log yet; keep the frame. */
      durable?: false;
    }
  | { type: 'durable'; upTo: number }
  | { type: 'error'; message: string };

/** Text messages the client sends. */
export type LiveSessionClientMessage = { type: 'keyframe' };

/** Close codes of a session (before the upgrade the same conditions are HTTP statuses). */
export const LIVE_SESSION_CLOSE = {
  /** 1012: the node is draining; the stream was moved first: ask the API again. */
  draining: 1012,
  /** 1013: try again later. */
  tryAgain: 1013,
  badMessage: 4400,
  badToken: 4401,
  unknownStream: 4404,
  slowReader: 4408,
  /** Replaced by a newer socket, or the stream moved: ask the API again. */
  moved: 4409,
  ended: 4410,
  atCapacity: 4429,
} as const;

export type LiveSessionCloseCode = (typeof LIVE_SESSION_CLOSE)[keyof typeof LIVE_SESSION_CLOSE];

/** HTTP status for each close condition, for answers before the upgrade. */
export const LIVE_SESSION_HTTP_STATUS: Partial<Record<LiveSessionCloseCode, number>> = {
  [LIVE_SESSION_CLOSE.badToken]: 401,
  [LIVE_SESSION_CLOSE.unknownStream]: 404,
  [LIVE_SESSION_CLOSE.ended]: 410,
  [LIVE_SESSION_CLOSE.atCapacity]: 429,
  [LIVE_SESSION_CLOSE.tryAgain]: 503,
  [LIVE_SESSION_CLOSE.draining]: 503,
  [LIVE_SESSION_CLOSE.moved]: 409,
};

/** Pings every second; a socket silent for this long is closed. */
export const LIVE_SESSION_PING_MS = 1_000;
export const LIVE_SESSION_SILENCE_MS = 3_000;

/**
 * The job id under which a session's outputs are kept in the output store, one output per frame
 * (index = the stream-wide frame number), so that `/events` and `/ws` followers read them as any other.
 */
export function liveSessionJobId(streamId: string): string {
  return `${streamId}.live`;
}

const LIVE_SESSION_JOB_ID = /^(s[A-Za-z0-9_-]{16})\.live$/;

/** The stream whose session outputs `jobId` names (liveSessionJobId's inverse), or null. */
export function liveSessionStreamOf(jobId: string): string | null {
  return LIVE_SESSION_JOB_ID.exec(jobId)?.[1] ?? null;
}
