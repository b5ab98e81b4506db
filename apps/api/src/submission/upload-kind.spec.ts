import { HttpException } from '@nestjs/common';
import { uploadKindOf } from './upload-kind.js';

function refusal(contentType?: string, contentEncoding?: string) {
  try {
    uploadKindOf(contentType, contentEncoding);
  } catch (error) {
    const exception = error as HttpException;
    return { status: exception.getStatus(), body: exception.getResponse() as Record<string, unknown> };
  }
  throw new Error('expected a refusal');
}

describe('uploadKindOf', () => {
  it.each([
    ['application/octet-stream', undefined, { kind: 'raw', encoding: 'identity' }],
    ['application/octet-stream', 'identity', { kind: 'raw', encoding: 'identity' }],
    ['Application/Octet-Stream; foo=bar', 'LZ4', { kind: 'raw', encoding: 'lz4' }],
    ['application/octet-stream', 'x-gzip', { kind: 'raw', encoding: 'gzip' }],
    ['application/octet-stream', ' deflate ', { kind: 'raw', encoding: 'deflate' }],
    ['multipart/form-data; boundary=abc', undefined, { kind: 'multipart' }],
    ['multipart/form-data; boundary=abc', 'identity', { kind: 'multipart' }],
  ])('%s with Content-Encoding %s', (type, encoding, expected) => {
    expect(uploadKindOf(type, encoding)).toEqual(expected);
  });

  it('refuses other content types with 415 naming both accepted ones', () => {
    const { status, body } = refusal('application/json');
    expect(status).toBe(415);
    expect(body.message).toMatch(
      /application\/octet-stream .* or multipart\/form-data .*, got application\/json/,
    );
    expect(body.supported).toEqual(['application/octet-stream', 'multipart/form-data']);
    expect(refusal(undefined).status).toBe(415);
  });

  it.each(['br', 'zstd', 'gzip, lz4', 'compress'])(
    'refuses Content-Encoding %s with 415 and the list',
    (encoding) => {
      const { status, body } = refusal('application/octet-stream', encoding);
      expect(status).toBe(415);
      expect(body.message).toMatch(
        /is not supported; raw frames may be sent as identity, lz4, lz4-block, gzip, deflate/,
      );
      expect(body.supported).toEqual(['identity', 'lz4', 'lz4-block', 'gzip', 'deflate']);
    },
  );

  it('refuses a compressed multipart body', () => {
    const { status, body } = refusal('multipart/form-data; boundary=x', 'gzip');
    expect(status).toBe(415);
    expect(body.message).toMatch(/gzip is not supported for multipart\/form-data/);
  });
});
