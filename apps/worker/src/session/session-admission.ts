import { LIVE_SESSION_CLOSE, type LiveSessionCloseCode, type SessionTokenClaims } from '#contracts';
import type { StreamRecord, TokenRejection } from '#cluster';

/** What the upgrade checks need from the node. */
export interface AdmissionDeps {
  nodeId: string;
  verify(token: string | undefined): SessionTokenClaims | TokenRejection;
  /** The stream's record; rejects when Redis cannot be reached. */
  record(streamId: string): Promise<StreamRecord | null>;
  draining(): boolean;
}

export interface SessionRequest {
  streamId: string;
  /** The last frame whose output the client holds (-1: none). */
  since: number;
  token: string | undefined;
}

export type Admission =
  | { ok: true; request: SessionRequest; claims: SessionTokenClaims; record: StreamRecord }
  | { ok: false; code: LiveSessionCloseCode; message: string; retryAfterSeconds?: number };

const SESSION_PATH = /^\/v1\/streams\/([^/]+)\/session$/;

/** The session a request asks for, from its path and query; null when the path is not a session's. */
export function parseSessionRequest(
  url: string,
  authorization: string | undefined,
): SessionRequest | { error: string } | null {
  const parsed = new URL(url, 'http://node');
  const match = SESSION_PATH.exec(parsed.pathname);
  if (!match) return null;
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  const token = bearer?.[1] ?? parsed.searchParams.get('token') ?? undefined;
  const rawSince = parsed.searchParams.get('since') ?? '-1';
  const since = Number(rawSince);
  if (!/^-?\d{1,15}$/.test(rawSince) || since < -1) {
    return {
      error: `since must be -1 (no output held) or the last frame whose output the client holds, got "${rawSince}"`,
    };
  }
  let streamId: string;
  try {
    streamId = decodeURIComponent(match[1]);
  } catch {
    return { error: 'the stream id in the path is not valid URI encoding' };
  }
  return { streamId, since, token };
}

function refuse(code: LiveSessionCloseCode, message: string, retryAfterSeconds?: number): Admission {
  return { ok: false, code, message, retryAfterSeconds };
}

const TOKEN_MESSAGES: Record<TokenRejection, string> = {
  malformed:
    "no valid session token: send the `token` of the stream's `session` (GET /v1/streams/:id) as `Authorization: Bearer` or `?token=`",
  forged:
    "the session token is not signed with this cluster's secret: ask the API for a new one (GET /v1/streams/:id)",
  expired: 'the session token expired: ask the API for a new one (GET /v1/streams/:id)',
};

/**
 * The checks of a session's upgrade, in the order the contract gives them: a valid token for this
 * stream on this node, then the stream's record (exists, open, pinned here at the token's epoch).
 */
export async function admit(request: SessionRequest, deps: AdmissionDeps): Promise<Admission> {
  if (deps.draining()) {
    return refuse(
      LIVE_SESSION_CLOSE.draining,
      "this node is draining: ask the API for the stream's new node",
      1,
    );
  }
  const claims = deps.verify(request.token);
  if (typeof claims === 'string') return refuse(LIVE_SESSION_CLOSE.badToken, TOKEN_MESSAGES[claims]);
  if (claims.stream !== request.streamId) {
    return refuse(LIVE_SESSION_CLOSE.badToken, `the session token is for another stream (${claims.stream})`);
  }
  if (claims.node !== deps.nodeId) {
    return refuse(
      LIVE_SESSION_CLOSE.badToken,
      `the session token is for node ${claims.node}, this is node ${deps.nodeId}: use the grant's url`,
    );
  }
  let record: StreamRecord | null;
  try {
    record = await deps.record(request.streamId);
  } catch {
    return refuse(LIVE_SESSION_CLOSE.tryAgain, 'the node cannot reach Redis now: try again shortly', 1);
  }
  if (!record || record.params.mode !== 'live') {
    return refuse(
      LIVE_SESSION_CLOSE.unknownStream,
      `no live stream ${request.streamId} (unknown, or older than the retention time)`,
    );
  }
  if (record.state !== 'open') {
    return refuse(
      LIVE_SESSION_CLOSE.ended,
      `stream ${request.streamId} is ${record.state}: it takes no more frames`,
    );
  }
  if (record.node !== deps.nodeId || record.epoch !== claims.epoch) {
    return refuse(
      LIVE_SESSION_CLOSE.moved,
      `stream ${request.streamId} moved to another node since the token was issued: ask the API again (GET /v1/streams/:id)`,
    );
  }
  return { ok: true, request, claims, record };
}
