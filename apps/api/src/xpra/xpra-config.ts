import { isIP } from 'node:net';
import { ConfigError, integerSetting as integer, type Env } from '#cluster/shared-config.js';
import { isLoopbackHost } from '#cluster/session-token.js';
import { tlsFiles, type TlsFiles } from '../config/api-config.js';

/** The Xpra encoder listener (API.md, "Xpra encoder protocol"). */
export interface XpraConfig {
  host: string;
  port: number;
  /**
   * Clients answer Xpra's challenge with an API key as the password (which names their tenant):
   * required when the listener is bound beyond loopback and API keys are set.
   */
  requireAuth: boolean;
  /** Certificate and key for `ssl://` clients (told apart from `tcp://` ones by their first byte). */
  tls: TlsFiles | null;
  /** Largest payload of one packet or chunk on the wire. */
  maxPacketBytes: number;
  /** Largest payload once decompressed, and largest frame (a context's, a one-shot's). */
  maxDecompressedBytes: number;
}

/** `HOST:PORT` (an IP address or localhost; `[::1]:PORT` for IPv6). */
export function parseBind(name: string, raw: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(raw.trim());
  const host = match?.[1] ?? match?.[2] ?? '';
  const port = Number(match?.[3]);
  if (!match || (host !== 'localhost' && isIP(host) === 0) || port > 65535)
    throw new ConfigError(
      `${name} must be HOST:PORT with an IP address or localhost and a port 0-65535 (e.g. 127.0.0.1:20000), got "${raw}"`,
    );
  return { host, port };
}

export function xpraSettings(
  env: Env,
  api: { apiKeys: string[]; allowInsecurePublic: boolean; maxFramePixels: number },
): XpraConfig | null {
  const raw = env.XPRA_BIND ?? '';
  const tls = tlsFiles(env, 'XPRA_');
  if (raw === '') {
    if (tls)
      throw new ConfigError(
        'XPRA_TLS_CERT_FILE/XPRA_TLS_KEY_FILE are set but XPRA_BIND is not: set XPRA_BIND',
      );
    return null;
  }
  const { host, port } = parseBind('XPRA_BIND', raw);
  const loopback = isLoopbackHost(host);
  if (!loopback && api.apiKeys.length === 0 && !api.allowInsecurePublic)
    throw new ConfigError(
      `refusing to serve Xpra on ${host} without API_KEYS: set API_KEYS (clients give a key as their password), bind XPRA_BIND to 127.0.0.1, or set ALLOW_INSECURE_PUBLIC=true`,
    );
  // One frame of the largest size the API takes, 4 bytes a pixel, and room for the packet around it.
  const frameBytes = api.maxFramePixels * 4 + 64 * 1024;
  const maxDecompressedBytes = integer(env, 'XPRA_MAX_PACKET_BYTES', frameBytes, 64 * 1024, 2 ** 32 - 1);
  return {
    host,
    port,
    requireAuth: !loopback && api.apiKeys.length > 0,
    tls,
    maxPacketBytes: maxDecompressedBytes,
    maxDecompressedBytes,
  };
}
