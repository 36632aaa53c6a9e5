/**
 * `leasehold`: the operator CLI. It talks to a server through the SDK (src/client) only;
 * `serve` runs the server itself.
 *
 * Exit codes:
 *   0  ok
 *   1  unexpected error
 *   2  usage error (commander's own too), or the server said 400/413/415 (BadRequestError)
 *   3  refused: campaign not granted, NotLeaderError, FencingError, ConflictError (409/422)
 *   4  not found: NotFoundError (404)
 *   5  not authorised: AuthError (401/403)
 *   6  unavailable: UnavailableError (503, 429, timeout, connection refused)
 * Errors go to stderr as `leasehold: <Code>: <message>`; output meant for scripts to stdout.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_URL, describeError, EXIT, EXIT_CODES_HELP, exitCodeFor, integer, lastOutcome, warn } from './common.js';
import { registerHistory } from './history.js';
import { registerLeaders } from './leaders.js';
import { registerLeadership } from './leadership.js';
import { registerServe } from './serve.js';
import { registerStores } from './stores.js';
import { registerClusters } from './clusters.js';
import { stopWithNpm } from '../npmParent.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function buildProgram(): Command {
  // Settings made before `.command()` are inherited by every command.
  const program = new Command('leasehold')
    .description('Operate a leasehold server: clusters, leaders, watches, campaigns, job results and cleanup.')
    .version(version)
    .addOption(new Option('--url <url>', 'server URL').env('LEASEHOLD_URL').default(DEFAULT_URL))
    .addOption(new Option('--token <token>', 'bearer token').env('LEASEHOLD_TOKEN'))
    .addOption(new Option('--timeout <ms>', 'request timeout in ms').argParser(integer(1)).default(10_000))
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ outputError: (text, write) => write(`leasehold: Usage: ${text.replace(/^error: /, '')}`) })
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  registerServe(program);
  registerLeaders(program);
  registerLeadership(program);
  registerStores(program);
  registerClusters(program);
  registerHistory(program);
  return program.addHelpText('afterAll', EXIT_CODES_HELP);
}

/** Runs the command line; answers the exit code, or null while `serve` runs. */
async function run(argv: string[]): Promise<number | null> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    // Commander has already said what was wrong (or shown help or the version).
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    warn(describeError(err));
    return exitCodeFor(err);
  }
  const outcome = lastOutcome();
  return outcome === 'serving' ? null : outcome;
}

/** Resolves once everything written so far has been handed to the OS. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

// A reader that went away (`leasehold watch | head`) is a normal end, not a crash.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(EXIT.ok);
});

stopWithNpm();
const code = await run(process.argv);
if (code !== null) {
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}
