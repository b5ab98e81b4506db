import { RedisCredentialsError, checkRedisCredentials, redact } from '#cluster';
import { createLogger } from '#logging';
import { loadCapabilities } from './capabilities.js';
import { EncoderNode } from './encoder-node.js';
import { ConfigError, WORKER_USAGE, parseNodeArgs, type NodeConfig } from './node-config.js';

// Flags and environment (the settings shared with the API included) are checked before anything
// starts; usage and configuration errors stay plain text.
function readConfig(): NodeConfig {
  try {
    return parseNodeArgs(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`configuration error: ${error.message}\n\n${WORKER_USAGE}`);
      process.exit(2);
    }
    throw error;
  }
}
const config = readConfig();
// JSON lines through pino (LOG_LEVEL, LOG_PRETTY like the API).
const root = createLogger({ service: 'worker', level: config.logLevel, pretty: config.logPretty });
let log = root;

const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  if (config.help) {
    console.log(WORKER_USAGE);
    return;
  }
  log = root.child({ node: config.name, pool: config.pool });
  // A refused password is a configuration error: one line and exit, before minutes of probing and
  // retrying. Redis being away is not: the node waits for it, logging as it goes.
  try {
    if ((await checkRedisCredentials(config.redisUrl)) === 'unreachable')
      log.warn(
        `Redis at ${redact(config.redisUrl)} not reachable yet: probing the encoders, then waiting for it`,
      );
  } catch (error) {
    if (error instanceof RedisCredentialsError) {
      console.error(`configuration error: --redis/REDIS_URL: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  if (config.syntheticCostMs !== null) {
    log.warn(
      `test only: image codecs are synthetic (${config.syntheticCostMs} ms a frame, no real encoding)`,
    );
  }
  const capabilities = await loadCapabilities(config);
  const node = new EncoderNode(config, capabilities, log, (message) => {
    log.fatal(`configuration error: --redis/REDIS_URL: ${message}`);
    process.exit(2);
  });
  // Ctrl-C reaches the whole process group and `npm start` then sends SIGTERM to drain the node: one
  // drain for both. The same signal twice (an impatient operator, an orchestrator) exits at once.
  const signalled = new Set<string>();
  const shutdown = (signal: string) => {
    if (signalled.has(signal)) {
      log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    signalled.add(signal);
    if (signalled.size > 1) return;
    // Leaving must not depend on Redis answering: past the drain timeout and a grace period, exit
    // anyway (the locks of anything still active expire and other nodes take it).
    const deadline = setTimeout(() => {
      log.warn(`shutdown did not finish within ${config.drainTimeoutMs + SHUTDOWN_GRACE_MS} ms: exiting`);
      process.exit(1);
    }, config.drainTimeoutMs + SHUTDOWN_GRACE_MS);
    deadline.unref();
    void node.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await node.start();
}

main().catch((error: unknown) => {
  // Settings only checkable at start (CLUSTER_SECRETS beyond loopback, the data port's TLS files).
  if (error instanceof ConfigError) {
    console.error(`configuration error: ${error.message}`);
    process.exit(2);
  }
  log.fatal({ err: error }, error instanceof Error ? error.message : String(error));
  process.exit(1);
});
