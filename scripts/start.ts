import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runDemo, runLiveDemo } from './demo.js';
import { ServiceStack } from './lib/stack.js';

/**
 * `npm start`: everything on one machine. An embedded redis-server (unless REDIS_URL is set), the API
 * on HOST:PORT and one CPU encoder node; with --demo, sample frames go through it once it is up.
 * Ctrl-C (or SIGTERM) drains the node and stops all of it.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { demo: { type: 'boolean' } } });
  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? '127.0.0.1';
  const stack = await ServiceStack.start({
    redisUrl: process.env.REDIS_URL,
    redisPort: Number(process.env.REDIS_PORT ?? 0),
    dataDir: process.env.DATA_DIR,
    apiPort: port,
    apiHost: host,
    workers: [
      {
        name: `local-cpu`,
        concurrency: Number(process.env.WORKER_CONCURRENCY ?? availableParallelism()),
        // The node's data port listens where the API does, so that whoever reaches the API reaches it.
        bind: `${host.includes(':') ? `[${host}]` : host}:0`,
      },
    ],
    // Request logs would scroll the demo's progress away; LOG_LEVEL=info brings them back.
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    verbose: true,
  });
  console.log(
    `\nencoder service up: API ${stack.apiUrl}  Redis ${stack.redisUrl}${stack.redis ? ' (embedded)' : ''}`,
  );
  console.log(`try: curl ${stack.apiUrl}/v1/nodes   (Ctrl-C stops everything)\n`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: draining the node, stopping the API and Redis`);
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  if (values.demo) {
    console.log('demo: encoding sample desktop frames');
    const files = await runDemo(stack.client, join(process.cwd(), 'out'));
    console.log(`demo: wrote ${files.length} files to ./out`);
    console.log('demo: a live H.264 stream through the client CLI');
    await runLiveDemo(stack.apiUrl, join(process.cwd(), 'out', 'live'), stack.apiKey);
    console.log('demo: wrote out/live/stream.h264; the service keeps running\n');
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
