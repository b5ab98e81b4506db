import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ConfigError, loadApiConfig } from './config/api-config.js';
import { createApi } from './create-api.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadApiConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const app = await createApi(config);
  await app.listen(config.port, config.host);
  new Logger('Main').log(
    `API listening on http://${config.host}:${config.port} (Redis ${config.redisUrl.replace(/\/\/[^@]*@/, '//***@')})`,
  );
}

void main();
