/** Leadership commands: leaders, watch, campaign, resign (per component). */
import type { Command } from 'commander';
import {
  type Change,
  type Cluster,
  type Component,
  type ComponentLeader,
  type Leader,
} from '../client/index.js';
import { act, clientOf, describeError, EXIT, integer, isFatal, print, printJson, printLine, untilSignal, UsageError, warn } from './common.js';
import { dash, lease, now, table } from './format.js';

export function registerLeaders(program: Command): void {
  program
    .command('leaders')
    .description('show the leader of every component of a cluster')
    .argument('<cluster>', 'cluster id')
    .option('--json', "print the server's answer as JSON")
    .action(act(leaders));

  program
    .command('watch')
    .description('follow the leadership changes of a cluster, one line each (snapshots: one line per component)')
    .argument('<cluster>', 'cluster id')
    .option('--components <list>', 'only these components, comma-separated')
    .option('--since <index>', 'replay the changes after this index', integer(0))
    .option('--count <n>', 'exit after this many changes (snapshots do not count)', integer(1))
    .option('--json', 'print the snapshot and change messages as NDJSON')
    .addHelpText('after', '\nLines: <ISO time> <index> <event> <component> <contender|-> <address|->. Runs until SIGINT/SIGTERM (exit 0).')
    .action(act(watch));

  program
    .command('campaign')
    .description('campaign once for a component (exit 3 when another contender holds it), or hold it with --hold')
    .argument('<cluster>', 'cluster id')
    .argument('<component>', 'resourcemanager, dispatcher, rest or jobmanager/<job id>')
    .requiredOption('--contender <id>', 'contender id')
    .option('--ttl <ms>', "lease TTL (default: the server's)", integer(1))
    .option('--address <address>', 'address to publish with the grant')
    .option('--hold', 'keep leading (renewing) and print every grant and revoke until SIGINT/SIGTERM, then resign')
    .option('--json', 'print JSON (with --hold: NDJSON events)')
    .action(act(campaign));

  program
    .command('resign')
    .description('release a lease; without --contender and --session, whoever leads now (a forced failover)')
    .argument('<cluster>', 'cluster id')
    .argument('<component>', 'resourcemanager, dispatcher, rest or jobmanager/<job id>')
    .option('--contender <id>', "the holder's contender id (with --session)")
    .option('--session <id>', "the holder's session id (with --contender)")
    .option('--json', 'print JSON')
    .action(act(resign));
}

async function leaders(clusterId: string, opts: { json?: boolean }, cmd: Command): Promise<number> {
  const cluster = clientOf(cmd).cluster(clusterId);
  const state = await cluster.leaders();
  if (opts.json) {
    printJson(state);
    return EXIT.ok;
  }
  const rows = state.leaders.map(({ component, leader: l }) =>
    l ? [component, l.contenderId, String(l.fencingToken), dash(l.address), lease(l.leaseRemainingMs), l.sessionId] : [component, '-', '-', '-', '-', '-'],
  );
  print(table(['COMPONENT', 'CONTENDER', 'TOKEN', 'ADDRESS', 'LEASE', 'SESSION'], rows));
  for (const line of await sharedSessions(cluster, state.leaders)) print(line);
  print(`index ${state.index}`);
  return EXIT.ok;
}

/**
 * Components led under one leadership share its session (per-component leases never do):
 * a line per such session, `leadership <session> <contender>: <components>`. The
 * leadership's own session counts even with one component published.
 */
async function sharedSessions(cluster: Cluster, leaders: ComponentLeader[]): Promise<string[]> {
  const bySession = new Map<string, { contenderId: string; components: string[] }>();
  for (const { component, leader } of leaders) {
    if (!leader) continue;
    const group = bySession.get(leader.sessionId) ?? { contenderId: leader.contenderId, components: [] };
    group.components.push(component);
    bySession.set(leader.sessionId, group);
  }
  const lead = bySession.size ? await cluster.leadership() : null;
  return [...bySession]
    .filter(([session, g]) => g.components.length > 1 || session === lead?.sessionId)
    .map(([session, g]) => `leadership ${session} ${g.contenderId}: ${g.components.join(', ')}`);
}

interface WatchOptions {
  components?: string;
  since?: number;
  count?: number;
  json?: boolean;
}

async function watch(clusterId: string, opts: WatchOptions, cmd: Command): Promise<number> {
  const cluster = clientOf(cmd).cluster(clusterId);
  const components = opts.components?.split(',').map((c) => c.trim()).filter(Boolean);
  // The retrieval retries forever; a read first turns a bad component, a refused token or
  // an unreachable server into an exit code.
  if (components?.length) await Promise.all(components.map((c) => cluster.leader(c as Component)));
  else await cluster.leaders();

  const retrieval = cluster.retrieval({ components, since: opts.since });
  let changes = 0;
  let lost = false;
  const counted = new Promise<void>((resolve) => {
    retrieval.on('snapshot', (leaders, index) => printSnapshot(leaders, index, opts.json));
    retrieval.on('change', (change) => {
      if (opts.count && changes >= opts.count) return;
      printChange(change, opts.json);
      if (opts.count && ++changes >= opts.count) resolve();
    });
  });
  retrieval.on('disconnected', (reason) => {
    lost = true;
    warn(`leasehold: Disconnected: ${reason}; reconnecting`);
  });
  retrieval.on('connected', (transport) => {
    if (lost) warn(`leasehold: Reconnected (${transport})`);
    lost = false;
  });
  retrieval.start();
  await Promise.race([counted, untilSignal()]);
  retrieval.close();
  return EXIT.ok;
}

function printSnapshot(leaders: ComponentLeader[], index: number, json?: boolean): void {
  if (json) return printLine({ type: 'snapshot', index, leaders });
  const time = now();
  for (const { component, leader } of leaders) print(watchLine(time, index, 'snapshot', component, leader));
}

function printChange(change: Change, json?: boolean): void {
  if (json) return printLine({ type: 'change', ...change });
  print(watchLine(now(), change.index, change.event, change.component, change.leader));
}

function watchLine(time: string, index: number, event: string, component: string, leader: Leader | null): string {
  return [time, index, event, component, dash(leader?.contenderId), dash(leader?.address)].join(' ');
}

interface CampaignOptions {
  contender: string;
  ttl?: number;
  address?: string;
  hold?: boolean;
  json?: boolean;
}

async function campaign(clusterId: string, component: string, opts: CampaignOptions, cmd: Command): Promise<number> {
  const cluster = clientOf(cmd).cluster(clusterId);
  if (opts.hold) return hold(cluster, component as Component, opts);
  const result = await cluster.campaign(component as Component, { contenderId: opts.contender, ttlMs: opts.ttl, address: opts.address });
  if (opts.json) printJson(result);
  else print(`${result.granted ? 'granted' : 'not granted'}: ${result.leader.contenderId} leads ${component} ${leaderDetails(result.leader)}`);
  return result.granted ? EXIT.ok : EXIT.refused;
}

function leaderDetails(l: Leader): string {
  return `(token ${l.fencingToken}, session ${l.sessionId}, lease ${lease(l.leaseRemainingMs)}, address ${dash(l.address)})`;
}

async function hold(cluster: Cluster, component: Component, opts: CampaignOptions): Promise<number> {
  const election = cluster.election({ component, contenderId: opts.contender, ttlMs: opts.ttl, address: opts.address });
  const fatal = new Promise<never>((_resolve, reject) => {
    election.on('error', (err) => (isFatal(err) ? reject(err) : warn(`${describeError(err)} (retrying)`)));
  });
  election.on('granted', (_session, _token, { leader }) => {
    if (opts.json) printLine({ type: 'granted', time: now(), component, leader });
    else print(`${now()} granted ${component} to ${leader.contenderId} ${leaderDetails(leader)}`);
  });
  election.on('revoked', (reason) => {
    if (opts.json) printLine({ type: 'revoked', time: now(), component, contenderId: opts.contender, reason });
    else print(`${now()} revoked ${component} from ${opts.contender} (${reason})`);
  });
  election.start();
  try {
    await Promise.race([untilSignal(), fatal]);
  } finally {
    await election.resign();
  }
  return EXIT.ok;
}

interface ResignOptions {
  contender?: string;
  session?: string;
  json?: boolean;
}

async function resign(clusterId: string, component: string, opts: ResignOptions, cmd: Command): Promise<number> {
  if ((opts.contender === undefined) !== (opts.session === undefined)) {
    throw new UsageError('--contender and --session go together (or leave both out to resign whoever leads)');
  }
  const cluster = clientOf(cmd).cluster(clusterId);
  const c = component as Component;
  const holder = opts.contender !== undefined ? { contenderId: opts.contender, sessionId: opts.session! } : await cluster.leader(c);
  const released = holder ? await cluster.resign(c, { contenderId: holder.contenderId, sessionId: holder.sessionId }) : false;
  if (opts.json) {
    printJson({ component, released, contenderId: holder?.contenderId ?? null, sessionId: holder?.sessionId ?? null });
  } else if (!holder) {
    print(`${component} has no leader: nothing to release`);
  } else if (released) {
    print(`released ${component}: ${holder.contenderId} (session ${holder.sessionId})`);
  } else {
    print(`${component} had no leader: nothing released`);
  }
  return EXIT.ok;
}
