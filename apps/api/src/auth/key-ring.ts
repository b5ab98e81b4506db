import { createHash, timingSafeEqual } from 'node:crypto';

/** The tenant of keys given without a name (`API_KEYS=KEY1,KEY2`): they all share it, as before tenancy. */
export const DEFAULT_TENANT = 'default';
/** The tenant of operator keys given without a name: what an operator submits is kept apart from `default`. */
export const OPERATOR_TENANT = 'operator';

export const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const MIN_KEY_LENGTH = 16;

/** One configured key and the tenant its work belongs to. */
export interface KeyEntry {
  tenant: string;
  key: string;
}

/** Who is calling: the tenant that owns what they create, and whether they see every tenant's work. */
export interface Principal {
  tenant: string;
  operator: boolean;
}

/** Everyone, when no keys are configured (loopback development): one tenant that sees all. */
export const OPEN_PRINCIPAL: Principal = Object.freeze({ tenant: DEFAULT_TENANT, operator: true });

/**
 * `name:KEY` or a plain `KEY` (tenant `fallbackTenant`). The name is split off only when it is a valid
 * tenant name, so a plain key that contains `:` after other characters is taken whole; a key whose
 * text before its first `:` looks like a name must be written with one (`default:KEY`).
 * Throws with a message naming `setting` (never the key itself).
 */
export function parseKeyList(raw: string | undefined, setting: string, fallbackTenant: string): KeyEntry[] {
  const entries: KeyEntry[] = [];
  for (const item of (raw ?? '').split(',')) {
    const text = item.trim();
    if (!text) continue;
    const at = text.indexOf(':');
    const named = at > 0 && TENANT_PATTERN.test(text.slice(0, at));
    const entry = named
      ? { tenant: text.slice(0, at), key: text.slice(at + 1).trim() }
      : { tenant: fallbackTenant, key: text };
    if (entry.key.length < MIN_KEY_LENGTH) {
      throw new Error(
        `${setting} entries must be KEY or TENANT:KEY with keys of at least ${MIN_KEY_LENGTH} characters` +
          (named ? ` (the key of tenant "${entry.tenant}" is shorter)` : ''),
      );
    }
    entries.push(entry);
  }
  return entries;
}

/** The key of the first entry of an API_KEYS value, for tools that call the API with it. */
export function firstKeyOf(raw: string | undefined): string | undefined {
  return parseKeyList(raw, 'API_KEYS', DEFAULT_TENANT)[0]?.key;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

interface Known extends Principal {
  digest: Buffer;
}

/**
 * Who a key belongs to. Operators are the OPERATOR_KEYS; without any, the holders of API_KEYS are
 * operators only when they are all one tenant (no one else's work to see: the setup before tenancy).
 */
export class KeyRing {
  private readonly known: Known[];
  readonly dashboardClosedToAll: boolean;

  constructor(apiKeys: KeyEntry[], operatorKeys: KeyEntry[] = []) {
    const tenants = new Set(apiKeys.map((entry) => entry.tenant));
    const apiKeysOperate = operatorKeys.length === 0 && tenants.size <= 1;
    this.known = [
      ...apiKeys.map((entry) => ({
        tenant: entry.tenant,
        operator: apiKeysOperate,
        digest: digest(entry.key),
      })),
      ...operatorKeys.map((entry) => ({ tenant: entry.tenant, operator: true, digest: digest(entry.key) })),
    ];
    this.dashboardClosedToAll = !this.known.some((entry) => entry.operator);
  }

  /** False when no keys are configured: everything is open (OPEN_PRINCIPAL). */
  get enabled(): boolean {
    return this.known.length > 0;
  }

  /**
   * The principal of a presented key, or null. Every configured key is compared, digest against digest,
   * so that neither the length nor the content of a key, nor which one matched, leaks through timing.
   */
  identify(candidate: string): Principal | null {
    const presented = digest(candidate);
    let found: Known | null = null;
    for (const entry of this.known) {
      if (timingSafeEqual(presented, entry.digest) && !found) found = entry;
    }
    return found ? { tenant: found.tenant, operator: found.operator } : null;
  }
}
