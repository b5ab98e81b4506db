import { ConfigError, loadApiConfig } from '../config/api-config.js';

const KEY = 'acme:0123456789abcdef0123';

describe('XPRA_BIND and its companions', () => {
  it('is off when unset', () => {
    expect(loadApiConfig({}).xpra).toBeNull();
  });

  it('binds HOST:PORT, without authentication on loopback', () => {
    expect(loadApiConfig({ XPRA_BIND: '127.0.0.1:20000' }).xpra).toMatchObject({
      host: '127.0.0.1',
      port: 20000,
      requireAuth: false,
      tls: null,
    });
    expect(loadApiConfig({ XPRA_BIND: '[::1]:0' }).xpra).toMatchObject({ host: '::1', port: 0 });
  });

  it('requires API keys beyond loopback, and then the challenge', () => {
    expect(() => loadApiConfig({ XPRA_BIND: '0.0.0.0:20000' })).toThrow(
      /refusing to serve Xpra on 0.0.0.0 without API_KEYS/,
    );
    expect(loadApiConfig({ XPRA_BIND: '0.0.0.0:20000', API_KEYS: KEY }).xpra?.requireAuth).toBe(true);
  });

  it.each(['20000', 'host:20000', '127.0.0.1:70000', '127.0.0.1:', ':20000', '127.0.0.1:2x'])(
    'refuses XPRA_BIND=%s with a message naming the setting',
    (value) => {
      expect(() => loadApiConfig({ XPRA_BIND: value })).toThrow(ConfigError);
      expect(() => loadApiConfig({ XPRA_BIND: value })).toThrow(/^XPRA_BIND must be HOST:PORT/);
    },
  );

  it('checks the packet limit and the TLS files', () => {
    expect(() => loadApiConfig({ XPRA_BIND: '127.0.0.1:1', XPRA_MAX_PACKET_BYTES: '10' })).toThrow(
      /XPRA_MAX_PACKET_BYTES must be an integer/,
    );
    expect(
      loadApiConfig({ XPRA_BIND: '127.0.0.1:1', XPRA_MAX_PACKET_BYTES: '1000000' }).xpra?.maxPacketBytes,
    ).toBe(1_000_000);
    expect(() => loadApiConfig({ XPRA_BIND: '127.0.0.1:1', XPRA_TLS_CERT_FILE: '/nonexistent' })).toThrow(
      /XPRA_TLS_CERT_FILE and XPRA_TLS_KEY_FILE go together/,
    );
    expect(() =>
      loadApiConfig({
        XPRA_BIND: '127.0.0.1:1',
        XPRA_TLS_CERT_FILE: '/nonexistent',
        XPRA_TLS_KEY_FILE: '/x',
      }),
    ).toThrow(/XPRA_TLS_CERT_FILE: cannot read/);
    expect(() => loadApiConfig({ XPRA_TLS_CERT_FILE: '/a', XPRA_TLS_KEY_FILE: '/b' })).toThrow(
      /cannot read|XPRA_BIND/,
    );
  });
});
