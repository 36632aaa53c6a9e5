/** Store and cleanup commands: job-results, cleanup-job, cleanup-cluster. */
import type { Command } from 'commander';
import type { Fence } from '../client/index.js';
import { act, clientOf, EXIT, fence, print, printJson, UsageError } from './common.js';
import { dash, table } from './format.js';

export function registerStores(program: Command): void {
  program
    .command('job-results')
    .description('list the job results of a cluster')
    .argument('<cluster>', 'cluster id')
    .option('--dirty', 'only the dirty ones (not cleaned up yet)')
    .option('--json', "print the server's answer as JSON")
    .action(act(jobResults));

  program
    .command('cleanup-job')
    .description("global cleanup of a job: its leader, execution plan, checkpoints, checkpoint id counter and blobs (not its result)")
    .argument('<cluster>', 'cluster id')
    .argument('<jobId>', 'job id (32 hex digits)')
    .option('--fencing-token <token>', "the dispatcher's fencing token, or override (an admin's unfenced write)", fence, 'override' as Fence)
    .option('--json', "print the server's answer as JSON")
    .action(act(cleanupJob));

  program
    .command('cleanup-cluster')
    .description('delete every key of a cluster, leases included (cleanupAllData); needs --yes')
    .argument('<cluster>', 'cluster id')
    .option('--yes', 'yes, delete it all')
    .option('--json', "print the server's answer as JSON")
    .action(act(cleanupCluster));
}

async function jobResults(clusterId: string, opts: { dirty?: boolean; json?: boolean }, cmd: Command): Promise<number> {
  // Every page (the SDK follows nextCursor): the CLI prints them all.
  const entries = await clientOf(cmd).cluster(clusterId).jobResults().list(opts.dirty ? 'dirty' : undefined, { max: Infinity });
  if (opts.json) {
    printJson({ jobResults: entries });
    return EXIT.ok;
  }
  const rows = entries.map((e) => [e.jobId, e.applicationStatus, e.state, e.createdAt, dash(e.cleanedAt)]);
  print(table(['JOB ID', 'STATUS', 'STATE', 'CREATED', 'CLEANED'], rows));
  return EXIT.ok;
}

async function cleanupJob(clusterId: string, jobId: string, opts: { fencingToken: Fence; json?: boolean }, cmd: Command): Promise<number> {
  const result = await clientOf(cmd).cluster(clusterId).cleanupJob(jobId, opts.fencingToken);
  if (opts.json) printJson(result);
  else print(table(['PART', 'OUTCOME'], Object.entries(result.parts)));
  return EXIT.ok;
}

async function cleanupCluster(clusterId: string, opts: { yes?: boolean; json?: boolean }, cmd: Command): Promise<number> {
  if (!opts.yes) throw new UsageError(`cleanup-cluster deletes every key of cluster ${clusterId}, leases included: add --yes to do it`);
  const result = await clientOf(cmd).cluster(clusterId).cleanupAllData();
  if (opts.json) printJson(result);
  else print(table(['DELETED', 'COUNT'], Object.entries(result.deleted).map(([what, n]) => [what, String(n)])));
  return EXIT.ok;
}
