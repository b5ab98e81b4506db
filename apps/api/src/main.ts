import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import {
  checkRedisCredentials,
  credentialsErrorFor,
  isCredentialsError,
  isLoopbackHost,
  redact,
} from '#cluster';
import { ConfigError, loadApiConfig } from './config/api-config.js';
import { createApi } from './create-api.js';

/** A message on stderr and a non-zero exit: never an error object, whose fields may carry credentials. */
function exitWith(message: string, code: number): never {
  console.error(message);
  process.exit(code);
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadApiConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitWith(`configuration error: ${error.message}`, 2);
    throw error;
  }
  const redisUrl = config.redisUrl;
  try {
    await checkRedisCredentials(redisUrl);
    const app = await createApi(config);
    await app.listen(config.port, config.host);
  } catch (error) {
    // Redis may refuse the credentials at the check or, if it was away then, at the first command.
    if (isCredentialsError(error))
      exitWith(`configuration error: REDIS_URL: ${credentialsErrorFor(redisUrl, error as Error).message}`, 2);
    throw error;
  }
  const logger = new Logger('Main');
  logger.log(
    `API listening on ${config.tls ? 'https' : 'http'}://${config.host}:${config.port} (Redis ${redact(redisUrl)})`,
  );
  if (!config.tls && !isLoopbackHost(config.host))
    logger.warn(
      `serving plain HTTP on ${config.host}: API keys and frames cross the network in clear text. Set TLS_CERT_FILE and TLS_KEY_FILE, or put a TLS-terminating reverse proxy in front (README, Security)`,
    );
}

// The stack (message and frames) but not the error's own fields: a Redis error's hold the AUTH command.
main().catch((error: unknown) =>
  exitWith(
    `API failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    1,
  ),
);
