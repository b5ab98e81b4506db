import { loadCapabilities } from './capabilities.js';
import { EncoderNode } from './encoder-node.js';
import { ConfigError, WORKER_USAGE, parseNodeArgs } from './node-config.js';

const log = {
  info: (message: string) => console.log(`[worker] ${message}`),
  warn: (message: string) => console.warn(`[worker] ${message}`),
  error: (message: string) => console.error(`[worker] ${message}`),
};

async function main(): Promise<void> {
  let config;
  try {
    config = parseNodeArgs(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`${error.message}\n\n${WORKER_USAGE}`);
      process.exit(2);
    }
    throw error;
  }
  if (config.help) {
    console.log(WORKER_USAGE);
    return;
  }
  const capabilities = await loadCapabilities(config);
  const node = new EncoderNode(config, capabilities, log);
  let signals = 0;
  const shutdown = (signal: string) => {
    signals++;
    if (signals > 1) {
      log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    void node.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await node.start();
}

main().catch((error: unknown) => {
  log.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
