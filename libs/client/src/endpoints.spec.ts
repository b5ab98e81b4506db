import { endpointUrl, parseEndpoints } from './endpoints.js';

describe('parseEndpoints', () => {
  it('parses a single plain URL with the defaults', () => {
    expect(parseEndpoints('http://127.0.0.1:3000')).toEqual([
      { url: 'http://127.0.0.1:3000/', timeoutMs: 5000, reconnectDelayMs: 1000 },
    ]);
  });

  it('parses the Xpra-style list with options', () => {
    expect(parseEndpoints('http://a:3000/,timeout=5;http://b:3000/,timeout=10,reconnect-delay=2')).toEqual([
      { url: 'http://a:3000/', timeoutMs: 5000, reconnectDelayMs: 1000 },
      { url: 'http://b:3000/', timeoutMs: 10000, reconnectDelayMs: 2000 },
    ]);
  });

  it('accepts fractional seconds, spaces, https, a path prefix and a trailing ";"', () => {
    expect(
      parseEndpoints(' https://enc.example/api , reconnect-delay=0.25 ; http://b:1/,timeout=1.5 ;'),
    ).toEqual([
      { url: 'https://enc.example/api/', timeoutMs: 5000, reconnectDelayMs: 250 },
      { url: 'http://b:1/', timeoutMs: 1500, reconnectDelayMs: 1000 },
    ]);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['http://a:1/;;http://b:1/', /#2 is empty/],
    ['not a url', /"not a url" is not a URL/],
    ['ftp://a/', /not an http:\/\/ or https:\/\/ URL/],
    ['http://a:1/?x=1', /query or fragment/],
    ['http://user:pw@a:1/', /credentials/],
    [',timeout=5', /no URL/],
    ['http://a:1/,retries=3', /unknown option "retries": the options are timeout, reconnect-delay/],
    ['http://a:1/,timeout', /option "timeout" has no value/],
    ['http://a:1/,timeout=0', /timeout=0 is not a positive number of seconds/],
    ['http://a:1/,timeout=-2', /timeout=-2 is not a positive number/],
    ['http://a:1/,reconnect-delay=abc', /reconnect-delay=abc is not a positive number/],
    ['http://a:1/,timeout=', /timeout= is not a positive number/],
    ['http://a:1/,timeout=1,timeout=2', /"timeout" is given twice/],
    ['http://a:1/;http://a:1', /listed twice/],
  ])('rejects %j with a message that says what to fix', (list, message) => {
    expect(() => parseEndpoints(list)).toThrow(message);
  });
});

describe('endpointUrl', () => {
  it('joins API paths under the base, keeping a path prefix', () => {
    expect(endpointUrl('http://a:1/', '/v1/streams')).toBe('http://a:1/v1/streams');
    expect(endpointUrl('http://a:1/enc/', '/v1/jobs/j/outputs/0')).toBe('http://a:1/enc/v1/jobs/j/outputs/0');
    expect(endpointUrl('http://a:1/enc/', 'v1/streams/s/frames?frames=2')).toBe(
      'http://a:1/enc/v1/streams/s/frames?frames=2',
    );
  });
});
