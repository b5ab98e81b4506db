import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadApiConfig } from './api-config.js';

describe('security settings', () => {
  const key = 'k'.repeat(32);

  it('reads API_KEYS as a comma list and refuses a list that holds no key', () => {
    expect(loadApiConfig({ API_KEYS: ` ${key} ,${key}x,` }).apiKeys).toEqual([key, `${key}x`]);
    expect(loadApiConfig({ API_KEYS: '' }).apiKeys).toEqual([]);
    for (const value of [',', ' , ', ',,,'])
      expect(() => loadApiConfig({ API_KEYS: value })).toThrow(/API_KEYS is set but holds no key/);
    expect(() => loadApiConfig({ OPERATOR_KEYS: ',' })).toThrow(/OPERATOR_KEYS is set but holds no key/);
    expect(() => loadApiConfig({ API_KEYS: ',' })).toThrow(ConfigError);
  });
});

describe('TLS settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is off without files, and wants both files', () => {
    expect(loadApiConfig({}).tls).toBeNull();
    expect(() => loadApiConfig({ TLS_KEY_FILE: '/k.pem' })).toThrow(
      /TLS_CERT_FILE and TLS_KEY_FILE go together: .* got only TLS_KEY_FILE/,
    );
  });

  it('names the setting whose file cannot be read or is not PEM', () => {
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate');
    expect(() => loadApiConfig({ TLS_CERT_FILE: garbage, TLS_KEY_FILE: join(dir, 'missing.pem') })).toThrow(
      /^TLS_KEY_FILE: cannot read ".*missing\.pem" \(ENOENT\)$/,
    );
    expect(() => loadApiConfig({ TLS_CERT_FILE: garbage, TLS_KEY_FILE: garbage })).toThrow(
      /TLS_CERT_FILE\/TLS_KEY_FILE: .* are not a PEM certificate and its private key/,
    );
  });
});
