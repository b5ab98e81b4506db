import { DEFAULT_TENANT, KeyRing, OPERATOR_TENANT, firstKeyOf, parseKeyList } from './key-ring.js';
import { visibleTo } from './tenancy.js';

describe('parseKeyList', () => {
  const key = 'k'.repeat(20);

  it('reads TENANT:KEY and plain keys (the fallback tenant), skipping empty items', () => {
    expect(parseKeyList(` team-a:${key}, ${key}2 ,,team_b.1:${key}3`, 'API_KEYS', DEFAULT_TENANT)).toEqual([
      { tenant: 'team-a', key },
      { tenant: DEFAULT_TENANT, key: `${key}2` },
      { tenant: 'team_b.1', key: `${key}3` },
    ]);
    expect(parseKeyList(undefined, 'API_KEYS', DEFAULT_TENANT)).toEqual([]);
  });

  it('takes a key whole when what is before its first ":" is no tenant name', () => {
    expect(parseKeyList(`a b:${key}`, 'API_KEYS', DEFAULT_TENANT)).toEqual([
      { tenant: DEFAULT_TENANT, key: `a b:${key}` },
    ]);
    expect(parseKeyList(`:${key}`, 'OPERATOR_KEYS', OPERATOR_TENANT)).toEqual([
      { tenant: OPERATOR_TENANT, key: `:${key}` },
    ]);
  });

  it('refuses short keys, naming the setting and the tenant but never the key', () => {
    expect(() => parseKeyList('team-a:short', 'API_KEYS', DEFAULT_TENANT)).toThrow(
      /API_KEYS entries .* at least 16 characters \(the key of tenant "team-a" is shorter\)/,
    );
    expect(() => parseKeyList('tiny-key', 'OPERATOR_KEYS', OPERATOR_TENANT)).toThrow(/^OPERATOR_KEYS/);
  });

  it('gives tools the key of the first entry', () => {
    expect(firstKeyOf(`team-a:${key},other:${key}2`)).toBe(key);
    expect(firstKeyOf(undefined)).toBeUndefined();
  });
});

describe('KeyRing', () => {
  const a = { tenant: 'a', key: 'a'.repeat(20) };
  const b = { tenant: 'b', key: 'b'.repeat(20) };
  const op = { tenant: OPERATOR_TENANT, key: 'o'.repeat(20) };

  it('maps each key to its tenant; unknown keys to null', () => {
    const ring = new KeyRing([a, b], [op]);
    expect(ring.identify(a.key)).toEqual({ tenant: 'a', operator: false });
    expect(ring.identify(b.key)).toEqual({ tenant: 'b', operator: false });
    expect(ring.identify(op.key)).toEqual({ tenant: OPERATOR_TENANT, operator: true });
    expect(ring.identify('x'.repeat(20))).toBeNull();
    expect(ring.dashboardClosedToAll).toBe(false);
  });

  it('a single tenant without operator keys operates as before tenancy; several tenants do not', () => {
    expect(new KeyRing([a, { ...a, key: 'z'.repeat(20) }]).identify(a.key)?.operator).toBe(true);
    const several = new KeyRing([a, b]);
    expect(several.identify(a.key)?.operator).toBe(false);
    expect(several.dashboardClosedToAll).toBe(true);
    expect(new KeyRing([a], [op]).identify(a.key)?.operator).toBe(false);
    expect(new KeyRing([]).enabled).toBe(false);
  });
});

describe('visibleTo', () => {
  it('lets operators see all, tenants their own; records without an owner are the plain keys tenant', () => {
    expect(visibleTo({ tenant: 'a', operator: false }, 'a')).toBe(true);
    expect(visibleTo({ tenant: 'a', operator: false }, 'b')).toBe(false);
    expect(visibleTo({ tenant: 'x', operator: true }, 'b')).toBe(true);
    expect(visibleTo({ tenant: DEFAULT_TENANT, operator: false }, null)).toBe(true);
    expect(visibleTo({ tenant: 'a', operator: false }, null)).toBe(false);
  });
});
