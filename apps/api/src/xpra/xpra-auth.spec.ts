import { XpraChallenge } from './xpra-auth.js';

describe('XpraChallenge', () => {
  const challenge = new XpraChallenge([
    { tenant: 'other', key: 'other-key-0123456789' },
    { tenant: 'acme', key: 'acme-key-0123456789' },
  ]);
  const serverSalt = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
  const clientSalt = Buffer.from(Array.from({ length: 32 }, (_, i) => 100 + i));
  // What Xpra's own client (xpra.net.digest.gendigest, hmac+sha256) answers with the password "acme-key-0123456789".
  const xpraAnswer = Buffer.from(
    '40236f69487d7506bbd1233815ebcfd94576d8a157530de969ee950156849df0',
    'latin1',
  );

  it("accepts Xpra's answer and names the key's tenant", () => {
    expect(challenge.verify(serverSalt, clientSalt, xpraAnswer)?.tenant).toBe('acme');
  });

  it('refuses a wrong answer, another salt, and a short client salt', () => {
    const wrong = Buffer.from(xpraAnswer);
    wrong[0] ^= 1;
    expect(challenge.verify(serverSalt, clientSalt, wrong)).toBeNull();
    expect(challenge.verify(Buffer.alloc(64, 9), clientSalt, xpraAnswer)).toBeNull();
    expect(challenge.verify(serverSalt, clientSalt.subarray(0, 8), xpraAnswer)).toBeNull();
  });

  it('issues a fresh 64-byte salt with HMAC digests only (never xor, which would send the key)', () => {
    const a = challenge.issue();
    const b = challenge.issue();
    expect(a.salt.length).toBe(64);
    expect(a.salt.equals(b.salt)).toBe(false);
    expect(a.packet.slice(2, 5)).toEqual([{}, 'hmac+sha256', 'hmac+sha256']);
  });

  it('knows which clients can answer (the remote encoder module offers no digests)', () => {
    const digests = ['xor', 'hmac+sha256'];
    expect(XpraChallenge.canAnswer({ digest: digests, 'salt-digest': ['hmac+sha256'] })).toBe(true);
    expect(XpraChallenge.canAnswer({ digest: ['xor'], 'salt-digest': ['xor'] })).toBe(false);
    expect(XpraChallenge.canAnswer({ version: '6.' })).toBe(false);
  });
});
