/** `leasehold leadership show|campaign|resign|revoke`: the cluster's leadership, one lease
 * for many components (docs/api.md, "The leadership"). */
import { InvalidArgumentError, type Command } from 'commander';
import { type Cluster, type Component, type LeadershipInfo } from '../client/index.js';
import { act, clientOf, describeError, EXIT, integer, isFatal, print, printJson, printLine, untilSignal, UsageError, warn } from './common.js';
import { lease, now } from './format.js';

/** `component=address`, collected over repeated `--publish`. */
function publication(text: string, previous: Array<[Component, string]> = []): Array<[Component, string]> {
  const i = text.indexOf('=');
  if (i <= 0 || i === text.length - 1) throw new InvalidArgumentError('expected component=address');
  return [...previous, [text.slice(0, i) as Component, text.slice(i + 1)]];
}

export function registerLeadership(program: Command): void {
  const cmd = program.command('leadership').description("the cluster's leadership: one lease for many components");

  cmd
    .command('show')
    .description('show the leadership of a cluster and the components published under it')
    .argument('<cluster>', 'cluster id')
    .option('--json', "print the server's answer as JSON")
    .action(act(show));

  cmd
    .command('campaign')
    .description('campaign once for the leadership (exit 3 when another contender holds it), or hold it with --hold')
    .argument('<cluster>', 'cluster id')
    .requiredOption('--contender <id>', 'contender id')
    .option('--ttl <ms>', "lease TTL (default: the server's)", integer(1))
    .option('--publish <component=address>', 'publish a component under the leadership once granted (repeatable)', publication)
    .option('--hold', 'keep leading (renewing) and print every grant and revoke until SIGINT/SIGTERM, then resign')
    .option('--json', 'print JSON (with --hold: NDJSON events)')
    .action(act(campaign));

  cmd
    .command('resign')
    .description('release the leadership; without --contender and --session, whoever holds it')
    .argument('<cluster>', 'cluster id')
    .option('--contender <id>', "the holder's contender id (with --session)")
    .option('--session <id>', "the holder's session id (with --contender)")
    .option('--json', 'print JSON')
    .action(act(resign));

  cmd
    .command('revoke')
    .description("end the leadership (admin token): whoever's, or only --session's (exit 3 when it does not lead)")
    .argument('<cluster>', 'cluster id')
    .option('--session <id>', 'only this session')
    .option('--json', 'print JSON')
    .action(act(revoke));
}

/** `<contender> (token …, session …, lease …)` */
function describe(l: LeadershipInfo): string {
  return `${l.contenderId} (token ${l.token}, session ${l.sessionId}, lease ${lease(l.remainingMs)})`;
}

async function show(clusterId: string, opts: { json?: boolean }, cmd: Command): Promise<number> {
  const leadership = await clientOf(cmd).cluster(clusterId).leadership();
  if (opts.json) printJson({ leadership });
  else if (!leadership) print(`${clusterId} has no leadership`);
  else {
    print(`leadership: ${describe(leadership)}`);
    for (const { component, address } of leadership.components) print(`  ${component} ${address}`);
  }
  return EXIT.ok;
}

interface CampaignOptions {
  contender: string;
  ttl?: number;
  publish?: Array<[Component, string]>;
  hold?: boolean;
  json?: boolean;
}

async function campaign(clusterId: string, opts: CampaignOptions, cmd: Command): Promise<number> {
  const cluster = clientOf(cmd).cluster(clusterId);
  if (opts.hold) return hold(cluster, opts);
  const result = await cluster.campaignLeadership({ contenderId: opts.contender, ttlMs: opts.ttl });
  if (result.granted) {
    for (const [component, address] of opts.publish ?? []) await cluster.publishUnder(result.leadership.sessionId, component, address);
  }
  const answer = result.granted && opts.publish?.length ? { ...result, leadership: (await cluster.leadership()) ?? result.leadership } : result;
  if (opts.json) printJson(answer);
  else print(`${answer.granted ? 'granted' : 'not granted'}: ${describe(answer.leadership)} leads ${clusterId}${published(answer.leadership)}`);
  return result.granted ? EXIT.ok : EXIT.refused;
}

function published(l: LeadershipInfo): string {
  return l.components.length ? `, publishing ${l.components.map((c) => c.component).join(', ')}` : '';
}

async function hold(cluster: Cluster, opts: CampaignOptions): Promise<number> {
  const l = cluster.leadershipElection({ contenderId: opts.contender, ttlMs: opts.ttl });
  const fatal = new Promise<never>((_resolve, reject) => {
    l.on('error', (err) => (isFatal(err) ? reject(err) : warn(`${describeError(err)} (retrying)`)));
  });
  // Each grant publishes the components anew: a new session starts with none.
  const publishAll = async () => {
    for (const [component, address] of opts.publish ?? []) await l.publish(component, address);
  };
  let failed: (err: Error) => void = () => {};
  const publishFailed = new Promise<never>((_resolve, reject) => (failed = reject));
  l.on('granted', (_session, _token, { leadership }) => {
    if (opts.json) printLine({ type: 'granted', time: now(), leadership });
    else print(`${now()} granted the leadership of ${cluster.clusterId} to ${describe(leadership)}`);
    publishAll().catch((err: Error) => (isFatal(err) ? failed(err) : warn(`${describeError(err)}`)));
  });
  l.on('revoked', (reason) => {
    if (opts.json) printLine({ type: 'revoked', time: now(), contenderId: opts.contender, reason });
    else print(`${now()} revoked the leadership of ${cluster.clusterId} from ${opts.contender} (${reason})`);
  });
  l.start();
  try {
    await Promise.race([untilSignal(), fatal, publishFailed]);
  } finally {
    await l.close();
  }
  return EXIT.ok;
}

interface ResignOptions {
  contender?: string;
  session?: string;
  json?: boolean;
}

async function resign(clusterId: string, opts: ResignOptions, cmd: Command): Promise<number> {
  if ((opts.contender === undefined) !== (opts.session === undefined)) {
    throw new UsageError('--contender and --session go together (or leave both out to resign whoever leads)');
  }
  const cluster = clientOf(cmd).cluster(clusterId);
  const holder = opts.contender !== undefined ? { contenderId: opts.contender, sessionId: opts.session! } : await cluster.leadership();
  const released = holder ? await cluster.resignLeadership({ contenderId: holder.contenderId, sessionId: holder.sessionId }) : false;
  if (opts.json) printJson({ released, contenderId: holder?.contenderId ?? null, sessionId: holder?.sessionId ?? null });
  else if (!holder) print(`${clusterId} has no leadership: nothing to release`);
  else if (released) print(`released the leadership of ${clusterId}: ${holder.contenderId} (session ${holder.sessionId})`);
  else print(`${clusterId} had no leadership: nothing released`);
  return EXIT.ok;
}

async function revoke(clusterId: string, opts: { session?: string; json?: boolean }, cmd: Command): Promise<number> {
  const revoked = await clientOf(cmd).cluster(clusterId).revokeLeadership(opts.session);
  if (opts.json) printJson({ revoked });
  else print(revoked ? `revoked the leadership of ${clusterId}` : `${clusterId} had no leadership: nothing revoked`);
  return EXIT.ok;
}
