import { ConfigError, loadApiConfig } from './api-config.js';

describe('upload limit settings', () => {
  it('has defaults that fit one upload and one image of the largest size', () => {
    expect(loadApiConfig({})).toMatchObject({
      uploadBytesPerClient: 1024 ** 3,
      uploadBytesInFlight: 2 * 1024 ** 3,
      uploadIdleTimeoutMs: 30_000,
      imageBytesInFlight: 512 * 1024 ** 2,
    });
    // Unset caps follow a larger MAX_BODY_BYTES instead of refusing it.
    const big = loadApiConfig({ MAX_BODY_BYTES: String(3 * 1024 ** 3) });
    expect(big.uploadBytesPerClient).toBe(3 * 1024 ** 3);
    expect(big.uploadBytesInFlight).toBe(3 * 1024 ** 3);
  });

  it('refuses caps that one upload of the largest accepted size could never fit, naming the setting', () => {
    expect(() => loadApiConfig({ MAX_BODY_BYTES: '2048', UPLOAD_BYTES_PER_CLIENT: '1024' })).toThrow(
      new ConfigError(
        'UPLOAD_BYTES_PER_CLIENT must be at least 2048 (MAX_BODY_BYTES: one upload of the largest size must fit), got "1024"',
      ),
    );
    expect(() =>
      loadApiConfig({
        UPLOAD_BYTES_PER_CLIENT: String(4 * 1024 ** 3),
        UPLOAD_BYTES_IN_FLIGHT: String(1024 ** 3),
      }),
    ).toThrow(/UPLOAD_BYTES_IN_FLIGHT must be at least 4294967296/);
    expect(() => loadApiConfig({ IMAGE_BYTES_IN_FLIGHT: String(100 * 1024 ** 2) })).toThrow(
      /IMAGE_BYTES_IN_FLIGHT must be at least \d+ \(one image of MAX_FRAME_PIXELS/,
    );
    expect(() => loadApiConfig({ UPLOAD_IDLE_TIMEOUT_MS: '5s' })).toThrow(
      /UPLOAD_IDLE_TIMEOUT_MS must be an integer from 100 to 3600000, got "5s"/,
    );
  });
});
