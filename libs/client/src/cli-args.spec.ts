import { parseCli, UsageError, type StreamCommand } from './cli-args.js';

const env = {};

function usageError(argv: string[]): string {
  try {
    parseCli(argv, env);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error('no UsageError');
}

describe('parseCli', () => {
  it('parses a stream command with defaults', () => {
    const command = parseCli(['stream', '--codec', 'h264', '--synthetic', '30'], env) as StreamCommand;
    expect(command).toMatchObject({
      command: 'stream',
      codec: 'h264',
      mode: 'batch',
      source: { kind: 'synthetic', frames: 30 },
      width: 640,
      height: 360,
      format: 'rgba',
      fps: 30,
      batch: 1,
      realtime: false,
      transport: 'ws',
      progress: false,
      retryForMs: 60_000,
      endpoints: [{ url: 'http://127.0.0.1:3000/', timeoutMs: 5000, reconnectDelayMs: 1000 }],
    });
    expect(command.apiKey).toBeUndefined();
  });

  it('reads the server list and key from the environment, the flags win', () => {
    const fromEnv = parseCli(['nodes'], { ENCODER_API: 'http://a:1/;http://b:2/,timeout=2', API_KEY: 'k' });
    expect(fromEnv).toMatchObject({
      apiKey: 'k',
      endpoints: [{ url: 'http://a:1/' }, { url: 'http://b:2/', timeoutMs: 2000 }],
    });
    const flags = parseCli(['nodes', '--api', 'http://c:3', '--api-key', 'k2', '--json'], {
      ENCODER_API: 'http://a:1/',
    });
    expect(flags).toMatchObject({ apiKey: 'k2', json: true, endpoints: [{ url: 'http://c:3/' }] });
  });

  it('parses every stream option', () => {
    const command = parseCli(
      [
        'stream',
        '--accept',
        'av1, vp9',
        '--mode',
        'live',
        '--input',
        'frames.raw',
        '--width',
        '320',
        '--height',
        '240',
        '--format',
        'bgrx',
        '--fps',
        '29.97',
        '--quality',
        '80',
        '--speed',
        '90',
        '--pool',
        'gpu',
        '--keyframe-interval',
        '60',
        '--batch',
        '4',
        '--realtime',
        '--out',
        'out',
        '--sse',
        '--progress',
        '--retry-for',
        '2.5',
      ],
      env,
    );
    expect(command).toMatchObject({
      accept: 'av1,vp9',
      codec: undefined,
      mode: 'live',
      source: { kind: 'input', file: 'frames.raw' },
      width: 320,
      height: 240,
      format: 'bgrx',
      fps: 29.97,
      quality: 80,
      speed: 90,
      pool: 'gpu',
      keyframeInterval: 60,
      batch: 4,
      realtime: true,
      out: 'out',
      transport: 'sse',
      progress: true,
      retryForMs: 2500,
    });
  });

  it('sends a live stream over its session by default; --via-api and --via-post choose the relay or POST', () => {
    const base = ['stream', '--codec', 'h264', '--synthetic', '3', '--mode', 'live'];
    expect(parseCli(base, env)).toMatchObject({ live: 'direct', frameTimeoutMs: undefined });
    expect(parseCli([...base, '--via-api', '--frame-timeout', '250'], env)).toMatchObject({
      live: 'relay',
      frameTimeoutMs: 250,
    });
    expect(parseCli([...base, '--via-post'], env)).toMatchObject({ live: 'post' });
    expect(usageError([...base, '--via-api', '--via-post'])).toBe('give --via-api or --via-post, not both');
    expect(usageError(['stream', '--codec', 'h264', '--synthetic', '3', '--via-api'])).toMatch(
      /add --mode live/,
    );
    expect(usageError([...base, '--frame-timeout', '0'])).toMatch(
      /--frame-timeout must be an integer above 0/,
    );
  });

  it('takes image files after --images', () => {
    expect(
      parseCli(['stream', '--codec', 'jpeg', '--images', 'a.png', 'b.png', 'c.webp'], env),
    ).toMatchObject({
      source: { kind: 'images', files: ['a.png', 'b.png', 'c.webp'] },
    });
  });

  it('parses follow, job, nodes and help', () => {
    expect(parseCli(['follow', 'abc', '--since', '12', '--out', 'o'], env)).toMatchObject({
      command: 'follow',
      streamId: 'abc',
      since: 12,
      out: 'o',
      transport: 'ws',
    });
    expect(parseCli(['job', '--codec', 'png', '--images', 'x.png', '--priority', '5'], env)).toMatchObject({
      command: 'job',
      priority: 5,
      compression: 'lz4',
      source: { kind: 'images', files: ['x.png'] },
    });
    expect(
      parseCli(['job', '--codec', 'h264', '--synthetic', '4', '--compression', 'none'], env),
    ).toMatchObject({ command: 'job', compression: 'none' });
    expect(() =>
      parseCli(['job', '--codec', 'h264', '--synthetic', '4', '--compression', 'zstd'], env),
    ).toThrow(/--compression zstd: use one of lz4, none/);
    expect(parseCli([], env)).toMatchObject({ command: 'help', text: expect.stringContaining('Commands:') });
    expect(parseCli(['stream', '--help'], env)).toMatchObject({
      text: expect.stringContaining('--synthetic <frames>'),
    });
    expect(parseCli(['follow', '-h'], env)).toMatchObject({ text: expect.stringContaining('--since <id>') });
    expect(parseCli(['job', '--help'], env)).toMatchObject({ text: expect.stringContaining('one-off job') });
    expect(parseCli(['nodes', '--help'], env)).toMatchObject({ text: expect.stringContaining('--json') });
  });

  it.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['stream', '--synthetic', '3'], /give --codec .* or --accept/],
    [['stream', '--codec', 'h264', '--accept', 'vp9', '--synthetic', '3'], /--codec or --accept, not both/],
    [['stream', '--codec', 'mpeg2', '--synthetic', '3'], /--codec mpeg2 is not a codec/],
    [['stream', '--accept', 'vp9,gif', '--synthetic', '3'], /"gif" is not a codec/],
    [['stream', '--codec', 'h264'], /give the frames: --input/],
    [
      ['stream', '--codec', 'h264', '--synthetic', '3', '--input', 'f'],
      /one frame source, not --input and --synthetic/,
    ],
    [['stream', '--codec', 'h264', '--input', 'f'], /--input needs --width and --height/],
    [['stream', '--codec', 'h264', '--images', 'a.png', '--width', '3'], /takes the size from the images/],
    [['stream', '--codec', 'h264', '--synthetic', '0'], /--synthetic must be an integer above 0, got "0"/],
    [
      ['stream', '--codec', 'h264', '--synthetic', '2', '--batch', '1.5'],
      /--batch must be an integer above 0/,
    ],
    [
      ['stream', '--codec', 'h264', '--synthetic', '2', '--quality', '101'],
      /--quality must be an integer from 0 to 100/,
    ],
    [
      ['stream', '--codec', 'h264', '--synthetic', '2', '--fps', 'fast'],
      /--fps must be a number above 0 and at most 1000/,
    ],
    [
      ['stream', '--codec', 'h264', '--synthetic', '2', '--mode', 'turbo'],
      /--mode turbo is not a mode: use batch or live/,
    ],
    [
      ['stream', '--codec', 'h264', '--synthetic', '2', '--format', 'yuv'],
      /--format yuv is not a pixel format/,
    ],
    [['stream', '--codec', 'h264', '--synthetic', '2', '--pool', 'tpu'], /--pool tpu is not a pool/],
    [['stream', '--codec', 'h264', '--synthetic', '2', '--bogus'], /Unknown option '--bogus'.*stream --help/],
    [['stream', '--codec', 'h264', '--synthetic', '2', 'extra'], /unexpected argument "extra"/],
    [['stream', '--codec', 'h264', '--synthetic', '2', '--api', 'http://a/,timeout=0'], /--api: .*timeout=0/],
    [
      ['stream', '--codec', 'h264', '--synthetic', '2', '--retry-for', '0'],
      /--retry-for must be a number above 0/,
    ],
    [['follow'], /follow needs the stream id/],
    [['follow', 'a', 'b'], /one stream id/],
    [['follow', 'a', '--since', '-1'], /since/],
    [['nodes', 'x'], /unexpected argument "x"/],
  ])('%j -> UsageError %s', (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });
});
