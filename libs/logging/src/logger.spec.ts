import { Writable } from 'node:stream';
import { createLogger, isLogLevel } from './logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('writes JSON lines with the level as a word, the service and an ISO time', () => {
    const { lines, stream } = capture();
    createLogger({ service: 'worker', level: 'info', base: { node: 'n1' } }, stream).info('hello');
    expect(lines[0]).toMatchObject({ level: 'info', service: 'worker', node: 'n1', msg: 'hello' });
    expect(String(lines[0].time)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('redacts credentials in objects logged by hand', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ service: 'api', level: 'info' }, stream);
    logger.info(
      { req: { headers: { authorization: 'Bearer k', cookie: 'c', 'x-api-key': 'k', accept: '*/*' } } },
      'r',
    );
    expect(lines[0].req).toEqual({
      headers: {
        authorization: '[redacted]',
        cookie: '[redacted]',
        'x-api-key': '[redacted]',
        accept: '*/*',
      },
    });
  });

  it("redacts the command of a Redis error, which holds AUTH's password", () => {
    const { lines, stream } = capture();
    const error = Object.assign(new Error('WRONGPASS invalid username-password pair'), {
      command: { name: 'hello', args: ['3', 'AUTH', 'default', 'hunter2-password'] },
    });
    createLogger({ service: 'worker', level: 'info' }, stream).fatal({ err: error }, error.message);
    expect(JSON.stringify(lines[0])).not.toContain('hunter2-password');
    expect(lines[0].err).toMatchObject({ command: { name: 'hello', args: '[redacted]' } });
  });

  it('honours the level', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ service: 'api', level: 'warn' }, stream);
    logger.info('hidden');
    logger.warn('shown');
    expect(lines.map((line) => line.msg)).toEqual(['shown']);
  });

  it('knows the level names', () => {
    expect(isLogLevel('debug')).toBe(true);
    expect(isLogLevel('verbose')).toBe(false);
  });
});
