import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { createLogger } from '#logging';
import { AdminSessions } from './admin/admin-sessions.js';
import { operatorAuth } from './admin/operator-auth.js';
import { Authenticator } from './auth/authenticator.js';
import { AppModule } from './app.module.js';
import { strictInput } from './common/strict-input.js';
import type { ApiConfig } from './config/api-config.js';
import { setupDocs } from './docs/openapi.js';
import { httpLogger } from './logging/http-logging.js';
import { httpMetrics } from './metrics/http-metrics.js';
import { MetricsService } from './metrics/metrics.service.js';
import { StreamSockets } from './streams/stream-sockets.js';

/**
 * The Nest app, with the HTTP edge in a fixed order ahead of every route, Nest's and the raw Express
 * ones (Bull Board, Swagger UI) alike: request id and log line, HTTP metrics, then the routes.
 */
export async function createApi(
  config: ApiConfig,
  options: { logger?: false } = {},
): Promise<NestExpressApplication> {
  const logger = createLogger({
    service: 'api',
    level: options.logger === false ? 'silent' : config.logLevel,
    pretty: config.logPretty,
  });
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forConfig(config, logger), {
    bufferLogs: true,
    // JSON bodies (streams API) are small; raw frames are streamed, never parsed.
    bodyParser: true,
    httpsOptions: config.tls ?? undefined,
  });
  app.useLogger(app.get(Logger));
  app.use(httpLogger(logger));
  if (config.metricsEnabled) app.use(httpMetrics(app.get(MetricsService)));
  app.useBodyParser('json', { limit: '64kb' });
  app.use(strictInput());
  app.disable('x-powered-by');
  app.enableShutdownHooks();
  setupDocs(
    app,
    config.docsPublic
      ? null
      : operatorAuth({ auth: app.get(Authenticator), sessions: app.get(AdminSessions) }, 'keys'),
  );
  app.get(StreamSockets).attach(app.getHttpServer());
  return app;
}
