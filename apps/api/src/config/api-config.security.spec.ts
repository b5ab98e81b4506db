import { ConfigError, loadApiConfig, parseApiKeys } from './api-config.js';

describe('security settings', () => {
  const key = 'k'.repeat(32);

  it('reads API_KEYS as a comma list and refuses a list that holds no key', () => {
    expect(parseApiKeys(` ${key} ,${key}x,`)).toEqual([key, `${key}x`]);
    expect(loadApiConfig({ API_KEYS: '' }).apiKeys).toEqual([]);
    for (const value of [',', ' , ', ',,,'])
      expect(() => loadApiConfig({ API_KEYS: value })).toThrow(/API_KEYS is set but holds no key/);
    expect(() => loadApiConfig({ API_KEYS: ',' })).toThrow(ConfigError);
  });
});
