import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { methodLabel, routeLabel } from './metric-labels.js';
import type { MetricsService } from './metrics.service.js';

/** Counts every answered request (guards' 401s, Bull Board and /docs included), once, when it ends. */
export function httpMetrics(metrics: MetricsService): RequestHandler {
  return (request: Request, response: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    let done = false;
    const record = () => {
      if (done) return;
      done = true;
      const method = methodLabel(request.method);
      const route = routeLabel(request);
      metrics.httpRequests.inc({ method, route, status: String(response.statusCode) });
      metrics.httpDuration.observe({ method, route }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    response.once('finish', record);
    response.once('close', record);
    next();
  };
}
