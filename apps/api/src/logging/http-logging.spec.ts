import { acceptRequestId, requestLogFields } from './http-logging.js';

describe('request ids', () => {
  it('keeps a sane caller id', () => {
    expect(acceptRequestId('3f1c2a9e-5b7d-4c1e-8f00-123456789abc')).toBe(
      '3f1c2a9e-5b7d-4c1e-8f00-123456789abc',
    );
    expect(acceptRequestId(['abc.def:1', 'second'])).toBe('abc.def:1');
  });

  it('refuses ids that could forge or flood log lines', () => {
    for (const bad of [undefined, '', 'a b', 'line\nbreak', 'x'.repeat(129), '<script>', 'é']) {
      expect(acceptRequestId(bad)).toBeNull();
    }
  });
});

describe('request log fields', () => {
  it('keeps a few headers and never credentials', () => {
    const fields = requestLogFields({
      id: 'r1',
      method: 'POST',
      url: '/v1/jobs?codec=png',
      remoteAddress: '127.0.0.1',
      headers: {
        authorization: 'Bearer secret-secret-secret',
        'x-api-key': 'secret-secret-secret',
        cookie: 'encoder_admin=v1.1.2.3',
        'content-type': 'application/octet-stream',
        'user-agent': 'curl/8',
      },
    });
    expect(fields).toEqual({
      id: 'r1',
      method: 'POST',
      url: '/v1/jobs?codec=png',
      remoteAddress: '127.0.0.1',
      headers: { 'content-type': 'application/octet-stream', 'user-agent': 'curl/8' },
    });
    expect(JSON.stringify(fields)).not.toMatch(/secret|encoder_admin/);
  });
});
