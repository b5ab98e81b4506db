/**
 * Where Redis is, from one URL setting (REDIS_URL / --redis):
 * - `redis://[user:password@]host:port[/db]` or `rediss://...`: one server;
 * - `redis-cluster://[user:password@]host:port,host:port,...`: a Redis Cluster (any reachable nodes);
 * - `redis-sentinel://[user:password@]host:port,host:port/master-name`: a primary found through Sentinel.
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: HostPort[]; username?: string; password?: string }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; username?: string; password?: string };

export interface HostPort {
  host: string;
  port: number;
}

export class RedisTargetError extends Error {}

const USAGE =
  'redis://host:port, rediss://host:port, redis-cluster://host:port,host:port or redis-sentinel://host:port,host:port/master';

function hostPorts(list: string, url: string): HostPort[] {
  const nodes = list.split(',').map((entry) => {
    const match = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(entry.trim());
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535)
      throw new RedisTargetError(`"${entry}" in ${redact(url)} is not host:port`);
    return { host: match[1].replace(/^\[|\]$/g, ''), port };
  });
  if (nodes.length === 0) throw new RedisTargetError(`${redact(url)} lists no host:port`);
  return nodes;
}

function credentials(userInfo: string | undefined): { username?: string; password?: string } {
  if (!userInfo) return {};
  const [username, password] = userInfo.split(':', 2).map(decodeURIComponent);
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

export function parseRedisTarget(url: string): RedisTarget {
  if (/^rediss?:\/\/[^/]/.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new RedisTargetError(`${redact(url)} is not a valid URL (${USAGE})`);
    }
    return { kind: 'single', url };
  }
  const match = /^(redis-cluster|redis-sentinel):\/\/(?:([^@/]*)@)?([^/?]+)(?:\/([^?]*))?$/.exec(url);
  if (!match) throw new RedisTargetError(`Redis URL must be one of ${USAGE}, got "${redact(url)}"`);
  const [, scheme, userInfo, list, path] = match;
  if (scheme === 'redis-cluster')
    return { kind: 'cluster', nodes: hostPorts(list, url), ...credentials(userInfo) };
  if (!path)
    throw new RedisTargetError(
      `redis-sentinel:// needs the master name as its path, e.g. redis-sentinel://s1:26379/mymaster`,
    );
  return {
    kind: 'sentinel',
    sentinels: hostPorts(list, url),
    name: decodeURIComponent(path),
    ...credentials(userInfo),
  };
}

/** The URL with any password masked, for logs and error messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
