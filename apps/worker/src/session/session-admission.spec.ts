import { SessionTokens, type StreamRecord } from '#cluster';
import type { StreamParams } from '#contracts';
import { admit, parseSessionRequest, type AdmissionDeps } from './session-admission.js';

const tokens = new SessionTokens(['s'.repeat(32)]);
const params = { mode: 'live', codec: 'h264' } as StreamParams;
const record = (patch: Partial<StreamRecord> = {}): StreamRecord =>
  ({
    id: 'sAAAAAAAAAAAAAAAA',
    params,
    state: 'open',
    node: 'n1',
    epoch: 2,
    frames: 5,
    ...patch,
  }) as StreamRecord;

function deps(found: StreamRecord | null | Error = record(), draining = false): AdmissionDeps {
  return {
    nodeId: 'n1',
    verify: (token) => tokens.verify(token),
    record: () => (found instanceof Error ? Promise.reject(found) : Promise.resolve(found)),
    draining: () => draining,
  };
}
const request = (claims = { stream: 'sAAAAAAAAAAAAAAAA', node: 'n1', epoch: 2 }, ttl = 60_000) => ({
  streamId: 'sAAAAAAAAAAAAAAAA',
  since: -1,
  token: tokens.issue(claims, ttl).token,
});

describe('parseSessionRequest', () => {
  it('reads the stream, since, and a token from the header or the query', () => {
    expect(parseSessionRequest('/v1/streams/s1/session?since=4&token=q', undefined)).toEqual({
      streamId: 's1',
      since: 4,
      token: 'q',
    });
    expect(parseSessionRequest('/v1/streams/s1/session', 'Bearer h')).toEqual({
      streamId: 's1',
      since: -1,
      token: 'h',
    });
  });

  it('is null off the session path, and an error for a bad since', () => {
    expect(parseSessionRequest('/v1/streams/s1/ws', undefined)).toBeNull();
    expect(parseSessionRequest('/v1/streams/s1/session?since=x', undefined)).toEqual({
      error: expect.stringContaining('since must be') as string,
    });
    expect(parseSessionRequest('/v1/streams/s1/session?since=-2', undefined)).toHaveProperty('error');
  });
});

describe('admit', () => {
  it("admits a valid token for this stream on this node at the record's epoch", async () => {
    expect(await admit(request(), deps())).toMatchObject({ ok: true, record: { frames: 5 } });
  });

  it.each([
    ['no token', { ...request(), token: undefined }, deps(), 4401],
    ['an expired token', request(undefined, -1), deps(), 4401],
    [
      'a forged token',
      {
        ...request(),
        token: new SessionTokens(['f'.repeat(32)]).issue(
          { stream: 'sAAAAAAAAAAAAAAAA', node: 'n1', epoch: 2 },
          1000,
        ).token,
      },
      deps(),
      4401,
    ],
    [
      'a token for another stream',
      request({ stream: 'sBBBBBBBBBBBBBBBB', node: 'n1', epoch: 2 }),
      deps(),
      4401,
    ],
    [
      'a token for another node',
      request({ stream: 'sAAAAAAAAAAAAAAAA', node: 'n2', epoch: 2 }),
      deps(),
      4401,
    ],
    ['a stale epoch', request({ stream: 'sAAAAAAAAAAAAAAAA', node: 'n1', epoch: 1 }), deps(), 4409],
    ['a stream moved away', request(), deps(record({ node: 'n2' })), 4409],
    ['an unknown stream', request(), deps(null), 4404],
    ['a batch stream', request(), deps(record({ params: { ...params, mode: 'batch' } })), 4404],
    ['an ended stream', request(), deps(record({ state: 'ended' })), 4410],
    ['a closed stream', request(), deps(record({ state: 'closed' })), 4410],
    ['Redis away', request(), deps(new Error('Connection is closed.')), 1013],
    ['a draining node', request(), deps(record(), true), 1012],
  ])('refuses %s', async (_what, asked, given, code) => {
    expect(await admit(asked, given)).toMatchObject({ ok: false, code });
  });
});
