/** `serve`: the server itself, as `npm start` runs it, with a few settings as options. */
import { InvalidArgumentError, type Command } from 'commander';
import { act, integer } from './common.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run a leasehold server (as npm start does); --url, --token and --timeout do not apply')
    .option('--port <port>', 'port to listen on (sets PORT; default 8080)', integer(0, 65535))
    .option('--host <host>', 'address to listen on (sets HOST; default 127.0.0.1)')
    .option('--redis-url <url>', 'redis://… or rediss://… (sets REDIS_URL; default: start a local redis-server)', redisUrl)
    .option(
      '--redis-cluster-nodes <host:port,…>',
      "a Redis Cluster's nodes, or some of them (sets REDIS_CLUSTER_NODES; --redis-url then gives only user, password and TLS)",
      clusterNodes,
    )
    .addHelpText(
      'after',
      '\nEvery other setting comes from the environment (docs/operations.md). Stops gracefully on SIGINT/SIGTERM (exit 0); a bad configuration exits 1.',
    )
    .action(act(serve));
}

function redisUrl(text: string): string {
  if (!/^rediss?:\/\//.test(text)) throw new InvalidArgumentError('expected redis://… or rediss://…');
  return text;
}

/** host:port, comma-separated, as REDIS_CLUSTER_NODES (config.ts) takes them. */
function clusterNodes(text: string): string {
  if (!/^[^,]+:[0-9]{1,5}(,[^,]+:[0-9]{1,5})*$/.test(text)) throw new InvalidArgumentError('expected host:port,host:port,…');
  return text;
}

async function serve(opts: { port?: number; host?: string; redisUrl?: string; redisClusterNodes?: string }): Promise<'serving'> {
  if (opts.port !== undefined) process.env.PORT = String(opts.port);
  if (opts.host !== undefined) process.env.HOST = opts.host;
  if (opts.redisUrl !== undefined) process.env.REDIS_URL = opts.redisUrl;
  if (opts.redisClusterNodes !== undefined) process.env.REDIS_CLUSTER_NODES = opts.redisClusterNodes;
  // The server reads its configuration from the environment, and owns the process from then on.
  const { main } = await import('../server.js');
  await main();
  return 'serving';
}
