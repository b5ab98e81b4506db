import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { XpraValue } from '#xpra';
import type { KeyEntry } from '../auth/key-ring.js';

/**
 * Xpra's password challenge with the API keys as passwords (the key a client gives names its tenant).
 * The server sends a random salt; the client mixes in its own salt and answers an HMAC of the result
 * keyed by its password, so the key never crosses the wire. Only HMAC digests are offered: Xpra's
 * `xor` would send the key itself.
 */
export const CHALLENGE_DIGEST = 'hmac+sha256';
const SERVER_SALT_BYTES = 64;

export class XpraChallenge {
  constructor(private readonly keys: readonly KeyEntry[]) {}

  /** Whether a client's hello says it can answer this challenge. */
  static canAnswer(caps: Record<string, XpraValue>): boolean {
    const offered = (name: string) =>
      Array.isArray(caps[name]) && (caps[name] as XpraValue[]).includes(CHALLENGE_DIGEST);
    return offered('digest') && offered('salt-digest');
  }

  /** A fresh server salt and the `challenge` packet that carries it. */
  issue(): { salt: Buffer; packet: XpraValue[] } {
    const salt = randomBytes(SERVER_SALT_BYTES);
    return { salt, packet: ['challenge', salt, {}, CHALLENGE_DIGEST, CHALLENGE_DIGEST, 'API key'] };
  }

  /**
   * The key (and its tenant) that produced `response` for this salt pair, or null. Every key is tried,
   * so the time taken does not tell which one matched.
   */
  verify(serverSalt: Buffer, clientSalt: Buffer, response: Buffer): KeyEntry | null {
    if (clientSalt.length < 16 || clientSalt.length > 1024) return null;
    // Xpra: salt = hmac(client_salt, server_salt).hexdigest(); response = hmac(password, salt).hexdigest()
    const salt = Buffer.from(createHmac('sha256', clientSalt).update(serverSalt).digest('hex'), 'latin1');
    let found: KeyEntry | null = null;
    for (const entry of this.keys) {
      const expected = Buffer.from(createHmac('sha256', entry.key).update(salt).digest('hex'), 'latin1');
      if (expected.length === response.length && timingSafeEqual(expected, response) && found === null)
        found = entry;
    }
    return found;
  }
}
