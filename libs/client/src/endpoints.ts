/**
 * The API server list, in the syntax of Xpra's remote encoder option:
 *
 *     http://a:3000/,timeout=5;http://b:3000/,timeout=10,reconnect-delay=2
 *
 * `;` separates endpoints; each is a URL followed by `,key=value` options:
 * - `timeout` (seconds, default 5): connect/request timeout, also the health check's.
 * - `reconnect-delay` (seconds, default 1): the first backoff delay after a failure (it doubles on
 *   each further consecutive failure, up to a cap).
 */
export interface EndpointSpec {
  /** The base URL, normalised to end with `/` (a path prefix such as `/encoder/` is kept). */
  url: string;
  timeoutMs: number;
  reconnectDelayMs: number;
}

export const DEFAULT_ENDPOINT_TIMEOUT_S = 5;
export const DEFAULT_RECONNECT_DELAY_S = 1;
export const DEFAULT_API_URL = 'http://127.0.0.1:3000/';

const OPTIONS = {
  timeout: 'timeoutMs',
  'reconnect-delay': 'reconnectDelayMs',
} as const;

type OptionName = keyof typeof OPTIONS;

function isOption(name: string): name is OptionName {
  return Object.prototype.hasOwnProperty.call(OPTIONS, name);
}

const EXAMPLE = 'e.g. "http://a:3000/,timeout=5;http://b:3000/,timeout=10,reconnect-delay=2"';

/** Parses a server list; throws an Error whose message says what to fix. */
export function parseEndpoints(list: string): EndpointSpec[] {
  const text = list.trim();
  if (!text) throw new Error(`the API server list is empty: give at least one URL, ${EXAMPLE}`);
  // A trailing `;` is forgiven; an empty entry between two `;` is not.
  const entries = text.replace(/;\s*$/, '').split(';');
  const endpoints: EndpointSpec[] = [];
  entries.forEach((entry, position) => {
    const endpoint = parseEndpoint(entry.trim(), position + 1);
    const duplicate = endpoints.find((other) => other.url === endpoint.url);
    if (duplicate) {
      throw new Error(`API server ${endpoint.url} is listed twice: list each server once`);
    }
    endpoints.push(endpoint);
  });
  return endpoints;
}

function parseEndpoint(entry: string, position: number): EndpointSpec {
  const where = `API server #${position}`;
  if (!entry) throw new Error(`${where} is empty (two ";" in a row?): remove the empty entry, ${EXAMPLE}`);
  const [urlText, ...options] = entry.split(',');
  const url = parseUrl(urlText.trim(), where);
  const endpoint: EndpointSpec = {
    url,
    timeoutMs: DEFAULT_ENDPOINT_TIMEOUT_S * 1000,
    reconnectDelayMs: DEFAULT_RECONNECT_DELAY_S * 1000,
  };
  const seen = new Set<string>();
  for (const option of options) {
    const trimmed = option.trim();
    const equals = trimmed.indexOf('=');
    if (equals < 0) {
      throw new Error(
        `${where} (${url}): option "${trimmed}" has no value: write it as key=value, ` +
          `e.g. timeout=5 or reconnect-delay=2`,
      );
    }
    const name = trimmed.slice(0, equals).trim();
    const value = trimmed.slice(equals + 1).trim();
    if (!isOption(name)) {
      throw new Error(
        `${where} (${url}): unknown option "${name}": the options are ${Object.keys(OPTIONS).join(', ')}`,
      );
    }
    if (seen.has(name)) throw new Error(`${where} (${url}): option "${name}" is given twice: give it once`);
    seen.add(name);
    const seconds = Number(value);
    if (value === '' || !Number.isFinite(seconds) || seconds <= 0) {
      throw new Error(
        `${where} (${url}): ${name}=${value} is not a positive number of seconds: write e.g. ${name}=5`,
      );
    }
    endpoint[OPTIONS[name]] = Math.round(seconds * 1000);
  }
  return endpoint;
}

function parseUrl(text: string, where: string): string {
  if (!text) throw new Error(`${where} has options but no URL: start each entry with the URL, ${EXAMPLE}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${where}: "${text}" is not a URL: write it as http://host:port/, ${EXAMPLE}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${where}: "${text}" is not an http:// or https:// URL: the API speaks HTTP`);
  }
  if (url.search || url.hash) {
    throw new Error(`${where}: "${text}" has a query or fragment: give the server's base URL only`);
  }
  if (url.username || url.password) {
    throw new Error(`${where}: "${text}" has credentials in it: pass the API key with --api-key instead`);
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url.toString();
}

/** The URL of an API path (`/v1/...` or `v1/...`) under an endpoint's base URL. */
export function endpointUrl(base: string, path: string): string {
  return new URL(path.replace(/^\/+/, ''), base).toString();
}
