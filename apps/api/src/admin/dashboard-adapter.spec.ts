import { Logger } from '@nestjs/common';
import { DashboardAdapter } from './dashboard-adapter.js';

describe('DashboardAdapter error answers', () => {
  type Handler = (error: Error & { statusCode?: number }) => { status?: number; body: unknown };

  function installed(): Handler {
    const adapter = new DashboardAdapter();
    adapter.setErrorHandler((error: Error & { statusCode?: number }) => ({
      status: (error.statusCode ?? 500) as 500,
      body: { error: { key: 'ERRORS.BOARD' }, message: error.message },
    }));
    return (adapter as unknown as { errorHandler: Handler }).errorHandler;
  }

  it('Redis away: 503 in the API error shape, without the Redis client message', () => {
    const answer = installed()(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
    expect(answer).toEqual({
      status: 503,
      body: {
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'Redis is unavailable; nothing was stored, retry later',
      },
    });
  });

  it("the board's own 4xx answers stay as they are", () => {
    const missing = Object.assign(new Error('Queue not found'), { statusCode: 404 });
    expect(installed()(missing)).toEqual({
      status: 404,
      body: { error: { key: 'ERRORS.BOARD' }, message: 'Queue not found' },
    });
  });

  it('anything else: a 500 that is logged, its message not shown', () => {
    const logged: unknown[] = [];
    const error = Logger.prototype.error;
    Logger.prototype.error = (message: unknown) => void logged.push(message);
    try {
      expect(installed()(new Error('secret internals at /srv/x'))).toEqual({
        status: 500,
        body: { statusCode: 500, error: 'Internal Server Error', message: 'internal error' },
      });
    } finally {
      Logger.prototype.error = error;
    }
    expect(logged).toEqual([expect.stringContaining('secret internals')]);
  });
});
