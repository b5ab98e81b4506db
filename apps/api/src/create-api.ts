import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import type { ApiConfig } from './config/api-config.js';

export async function createApi(
  config: ApiConfig,
  options: { logger?: false } = {},
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forConfig(config), {
    logger: options.logger ?? ['log', 'warn', 'error'],
    // JSON bodies (streams API) are small; raw frames are streamed, never parsed.
    bodyParser: true,
  });
  app.useBodyParser('json', { limit: '64kb' });
  app.disable('x-powered-by');
  app.enableShutdownHooks();
  return app;
}
