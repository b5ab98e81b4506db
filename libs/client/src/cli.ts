#!/usr/bin/env node
import { ApiError } from './api-client.js';
import { parseCli, UsageError, type CliCommand } from './cli-args.js';
import { runFollow, runJob, runNodes, runStream, type CliIo } from './cli-commands.js';

/** The encoder client CLI: `npm run client -- <stream|follow|job|nodes> [options]` (see --help). */
export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  io: CliIo,
): Promise<number> {
  let command: CliCommand;
  try {
    command = parseCli(argv, env);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  try {
    switch (command.command) {
      case 'help':
        io.stdout.write(command.text);
        return 0;
      case 'stream':
        return await runStream(command, io);
      case 'follow':
        return await runFollow(command, io);
      case 'job':
        return await runJob(command, io);
      case 'nodes':
        return await runNodes(command, io);
    }
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    const hint =
      error instanceof ApiError && error.status === 401 ? ' (give the key with --api-key or API_KEY)' : '';
    io.stderr.write(`error: ${text}${hint}\n`);
    return 1;
  }
}

if (process.argv[1]?.endsWith('cli.js')) {
  const interrupt = new AbortController();
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
  });
  main(process.argv.slice(2), process.env, {
    stdout: process.stdout,
    stderr: process.stderr,
    interrupt: interrupt.signal,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
