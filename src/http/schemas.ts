/**
 * The wire model of leader election and retrieval: request and response schemas of the HTTP
 * API (JSON Schema, through TypeBox), declared once. The routes validate and serialize with
 * them, openapi.yaml is generated from them (scripts/openapi.ts, which names them through
 * wireSchemas.ts), and so are the SDK's types (src/client/wire.ts).
 */
import { Type, type Static, type TSchema } from 'typebox';
import type { Config } from '../config.js';
import { CLUSTER_ID_PATTERN, CONTENDER_ID_PATTERN, JOB_ID_PATTERN, SINGLETON_COMPONENTS } from '../ha/ids.js';

const JOB_MANAGER = 'jobmanager/[0-9a-fA-F]{32}';
const ANY_COMPONENT = `(${SINGLETON_COMPONENTS.join('|')}|${JOB_MANAGER})`;

export const ClusterId = Type.String({ pattern: CLUSTER_ID_PATTERN, examples: ['flink-prod'] });
export const JobId = Type.String({ pattern: JOB_ID_PATTERN });
export const SingletonComponent = Type.Unsafe<(typeof SINGLETON_COMPONENTS)[number]>({
  type: 'string',
  enum: [...SINGLETON_COMPONENTS],
});

export const ClusterParams = Type.Object({ clusterId: ClusterId });
export const ComponentParams = Type.Object({ clusterId: ClusterId, component: SingletonComponent });
export const JobManagerParams = Type.Object({ clusterId: ClusterId, jobId: JobId });

const DecimalIndex = Type.String({ pattern: '^[0-9]{1,16}$' });

/** Consul-style blocking query: `index` (decimal) and `wait` (`500ms`, `30s`, `2m`). */
export const BlockingQuery = Type.Object(
  {
    index: Type.Optional(DecimalIndex),
    wait: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}(ms|s|m)$' })),
    consistent: Type.Optional(
      Type.Unsafe<'' | 'true'>({
        type: 'string',
        enum: ['', 'true'],
        description:
          "`?consistent`: the answer reflects every write acknowledged before the request, on any server (Consul's " +
          "consistent mode): the server reads Redis's change log first. Without it a read is answered from this " +
          "server's view, which trails a change made through another server by the time pub/sub takes.",
      }),
    ),
  },
  { additionalProperties: false },
);

export const WatchQuery = Type.Object(
  {
    components: Type.Optional(Type.String({ pattern: `^${ANY_COMPONENT}(,${ANY_COMPONENT})*$` })),
    since: Type.Optional(DecimalIndex),
  },
  { additionalProperties: false },
);

export const ContenderId = Type.String({
  pattern: CONTENDER_ID_PATTERN,
  minLength: 1,
  maxLength: 128,
  description: 'Names the contender; 1 to 128 printable ASCII characters.',
});
export const SessionId = Type.String({ format: 'uuid', description: 'The leader session id of a grant (a UUID, as in Flink).' });
export const Address = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'Where the leader serves, for example a Flink RPC or REST URL.',
});

const ttlDescription =
  'Lease time to live in milliseconds, counted by Redis from when it runs the request. The ' +
  "server's `LEASE_TTL_DEFAULT_MS`, `LEASE_TTL_MIN_MS` and `LEASE_TTL_MAX_MS` set the default " +
  'and the allowed range (10000, and 1000 to 300000, unless configured).';

const bodiesOf = new WeakMap<Config['leaseTtl'], ReturnType<typeof makeElectionBodies>>();

/** The election requests' bodies, whose TTL range is configured; one set per configuration. */
export function electionBodies(config: Config) {
  let bodies = bodiesOf.get(config.leaseTtl);
  if (!bodies) bodiesOf.set(config.leaseTtl, (bodies = makeElectionBodies(config)));
  return bodies;
}

function makeElectionBodies(config: Config) {
  const TtlMs = Type.Integer({
    minimum: config.leaseTtl.minMs,
    maximum: config.leaseTtl.maxMs,
    description: ttlDescription,
  });
  const strict = { additionalProperties: false };
  return {
    TtlMs,
    campaign: Type.Object(
      {
        contenderId: ContenderId,
        ttlMs: Type.Optional(TtlMs),
        address: Type.Optional(Type.String({ ...Address, description: 'Confirms this address along with the grant.' })),
        lockDelayMs: Type.Optional(
          Type.Integer({
            minimum: 0,
            maximum: config.leaseTtl.maxMs,
            description:
              "Consul's lock-delay: when this grant's lease expires (not when it is resigned or revoked), " +
              'the component is granted to nobody for this long (ms), counted from when the expiry is ' +
              'recorded; campaigns meanwhile answer `409 LockDelay` with `Retry-After` and `retryAfterMs`. ' +
              'Default 0; at most `LEASE_TTL_MAX_MS`.',
          }),
        ),
      },
      strict,
    ),
    renew: Type.Object({ contenderId: ContenderId, sessionId: SessionId, ttlMs: Type.Optional(TtlMs) }, strict),
    confirm: Type.Object({ contenderId: ContenderId, sessionId: SessionId, address: Address }, strict),
    resign: Type.Object({ contenderId: ContenderId, sessionId: SessionId }, strict),
    streamRenewal: Type.Object(
      {
        id: Type.Union([Type.Integer(), Type.String({ maxLength: 64 })], {
          description: 'Chosen by the client; the answer to this renewal carries it back.',
        }),
        clusterId: ClusterId,
        component: Type.Optional(
          Type.String({
            pattern: `^${ANY_COMPONENT}$`,
            description: 'The per-component lease to renew (job ids in either case); absent with `leadership`.',
          }),
        ),
        leadership: Type.Optional(Type.Literal(true, { description: "The cluster's leadership to renew; absent with `component`." })),
        contenderId: ContenderId,
        sessionId: SessionId,
        ttlMs: Type.Optional(TtlMs),
      },
      {
        ...strict,
        description:
          'A renewal sent over `GET /v1/renewals`: of one per-component lease (`component`) or of ' +
          "a cluster's leadership (`leadership: true`), exactly one of the two.",
      },
    ),
  };
}

/**
 * A schema that also allows null, as a type list rather than anyOf: the response
 * serializer then tells the two apart by a typeof check, where anyOf would run a
 * validator for every value.
 */
export function nullable<T extends TSchema & { type: string }>(schema: T, options: { description?: string } = {}) {
  const made = Type.Unsafe<Static<T> | null>({ ...schema, ...options, type: [schema.type, 'null'] });
  NULLABLE_OF.set(made, schema);
  return made;
}

/** What each nullable schema allows besides null (so that openapi.yaml can name it). */
export const NULLABLE_OF = new WeakMap<object, TSchema>();

export const Index = Type.Integer({
  minimum: 0,
  description:
    "The cluster's change index. It only grows: every change to the cluster's leaders gets a greater " +
    "one. When needed it is derived from Redis's clock in microseconds, so it never goes backwards, " +
    'not across server or Redis restarts, and not even when Redis lost its data. Below 2^53, so JSON ' +
    'numbers hold it exactly.',
});

export const FencingToken = Type.Integer({
  minimum: 1,
  description:
    'Greater than every token granted before for this component of this cluster. When needed it is ' +
    "derived from Redis's clock in microseconds, so it never goes backwards, not even when Redis lost " +
    'its data. Below 2^53.',
});

export const ComponentName = Type.String({
  pattern: '^(resourcemanager|dispatcher|rest|jobmanager/[0-9a-f]{32})$',
  description: 'A component as answers name it. Job ids are in lower case.',
  examples: ['jobmanager/0123456789abcdef0123456789abcdef'],
});

export const LeaderObject = Type.Object(
  {
    contenderId: Type.String({ description: 'Names the contender.' }),
    sessionId: Type.String({ description: 'The leader session id of the grant (a UUID).' }),
    fencingToken: FencingToken,
    address: nullable(Type.String(), { description: 'The confirmed address, null until the leader confirms one.' }),
    acquiredAt: Type.String({
      format: 'date-time',
      description:
        "When the lease was granted, by Redis's clock, as ISO 8601 UTC. For people: act on " +
        '`leaseRemainingMs`, never on this instant.',
    }),
    leaseRemainingMs: Type.Integer({
      minimum: 0,
      description:
        "Milliseconds left on the lease, from the server's view when it answered (in a `change` " +
        'message: as of the change). A relative duration: count it on your own monotonic clock from ' +
        'when you sent the request.',
    }),
  },
  { additionalProperties: false, description: 'The holder of a lease.' },
);

/** A leader, or null when the lease is free. */
export const Leader = nullable(LeaderObject, { description: 'The holder of a lease, or null when it is free.' });

export const ComponentLeader = Type.Object(
  { component: ComponentName, leader: Leader },
  { additionalProperties: false },
);
/** A read of one component (answered as text by encode.ts). */
export const LeaderResponse = Type.Object(
  { component: ComponentName, leader: Leader, index: Index },
  { additionalProperties: false },
);
/** A read of all components (answered as text by encode.ts). */
export const LeadersResponse = Type.Object(
  {
    leaders: Type.Array(ComponentLeader, {
      description: 'The singletons first, then job managers with a leader, ordered by job id.',
    }),
    index: Index,
  },
  { additionalProperties: false },
);

export const CampaignResponse = Type.Object(
  {
    granted: Type.Boolean({ description: 'True when this contender holds the lease now (newly granted, or already its own).' }),
    leader: Leader,
  },
  { additionalProperties: false },
);
export const LeaseResponse = Type.Object({ leader: Leader }, { additionalProperties: false });
export const ResignResponse = Type.Object({ released: Type.Boolean() }, { additionalProperties: false });

export const ChangeEvent = Type.Unsafe<'granted' | 'confirmed' | 'revoked' | 'expired'>({
  type: 'string',
  enum: ['granted', 'confirmed', 'revoked', 'expired'],
});

export const WatchSnapshot = Type.Object(
  { type: Type.Literal('snapshot'), index: Index, leaders: Type.Array(ComponentLeader) },
  {
    additionalProperties: false,
    description: "The chosen components' leaders as of `index`. Replaces everything known before.",
  },
);
export const WatchChange = Type.Object(
  { type: Type.Literal('change'), event: ChangeEvent, component: ComponentName, leader: Leader, index: Index },
  {
    additionalProperties: false,
    description:
      'One change of one component. `leader` is the holder after the change: null after `revoked` ' +
      '(resigned, or removed by cleanup) and `expired` (the lease ran out, or was lost with ' +
      "Redis's data). Its `leaseRemainingMs` is as of the change, and `index` is the cluster's " +
      'index right after it.',
  },
);
export const WatchMessage = Type.Union([WatchSnapshot, WatchChange]);

export const Health = Type.Object({ status: Type.Literal('ok') });
export const Readiness = Type.Object({
  status: Type.Unsafe<'ready' | 'unavailable'>({ type: 'string', enum: ['ready', 'unavailable'] }),
  redis: Type.Unsafe<'up' | 'down'>({ type: 'string', enum: ['up', 'down'] }),
  replicas: Type.Object(
    {
      connected: Type.Integer({ minimum: 0, description: 'Replicas connected to the primary, as of the last check.' }),
      requiredForAck: Type.Integer({
        minimum: 0,
        description:
          'How many replicas must hold a grant, a renewal or a store write before it is acknowledged ' +
          '(`REDIS_MIN_REPLICAS_ACK`; with `auto`, one whenever the primary has any).',
      }),
    },
    { description: 'Replication before acknowledgement.' },
  ),
  primaryChanges: Type.Integer({
    minimum: 0,
    description: 'Times the Redis primary changed (a failover, or a restart), as its replication id tells.',
  }),
  dataLoss: Type.Object(
    {
      count: Type.Integer({ minimum: 0 }),
      lastDetectedAt: nullable(Type.String({ format: 'date-time' }), {
        description: 'When it last found that, as ISO 8601 UTC, or null if never.',
      }),
      clusters: Type.Array(Type.String(), {
        description: 'The clusters last found rolled back (at most 20), most recent last.',
      }),
    },
    {
      description:
        'Times this server found that Redis had lost data: all of it (a marker key vanished or changed), or ' +
        "a cluster's state below what the server had answered (a failover to a replica that lagged, a " +
        'restored backup), which is repaired and named under `clusters`.',
    },
  ),
  redisClockSteps: Type.Object(
    {
      count: Type.Integer({ minimum: 0 }),
      last: nullable(
        Type.Object({
          detectedAt: Type.String({ format: 'date-time', description: 'When it was seen, as ISO 8601 UTC.' }),
          stepMs: Type.Integer({ description: "How far Redis's clock moved (ms): positive forward, negative back." }),
        }),
        { description: 'The last step, or null if never.' },
      ),
    },
    {
      description:
        "Times Redis's clock (`TIME`) stepped against this server's monotonic clock between two health checks " +
        '(more than 1 s apart). Leases run out by Redis\'s clock: a step forward ends them early, one back late. ' +
        'Redis hosts must slew their clocks, not step them.',
    },
  ),
  clustersWatched: Type.Integer({ minimum: 0, description: 'Clusters whose leaders this server keeps in memory.' }),
  shards: Type.Optional(
    Type.Array(
      Type.Object({
        firstSlot: Type.Integer({ minimum: 0, maximum: 16383, description: 'The first hash slot it serves (where its marker lives).' }),
        slots: Type.Integer({ minimum: 0, description: 'How many hash slots it serves.' }),
        primary: Type.String({ description: 'host:port of its primary.' }),
        redis: Type.Unsafe<'up' | 'down'>({ type: 'string', enum: ['up', 'down'] }),
        replicas: Type.Integer({ minimum: 0, description: 'Replicas connected to its primary.' }),
      }),
      {
        description:
          'On a Redis Cluster (`REDIS_CLUSTER_NODES`), each shard. The clusters whose hash tag a shard down serves ' +
          'answer 503, the others do not; the server stays ready while any shard is up (`redis` is `up` only when all are).',
      },
    ),
  ),
  problems: Type.Array(Type.String(), {
    description:
      'Why the server is not ready although Redis answers: a Redis whose `maxmemory-policy` may evict ' +
      'keys (anything but `noeviction`), which can lose leases and stored data. Empty when there is none.',
  }),
});

export const ErrorResponse = Type.Object(
  {
    error: Type.String({
      description:
        'A stable code: `BadRequest`, `NotFound`, `NotLeader`, `PayloadTooLarge`, `UriTooLong`, ' +
        '`UnsupportedMediaType`, `RedisUnavailable`, `RedisOutOfMemory`, `GracePeriod`, `LockDelay`, `Overloaded`, ' +
        '`FencingTokenRequired`, `FencingTokenStale`, `IdempotencyKeyReused`, `JobResultExists`, ' +
        '`JobResultNotFound`, `ExecutionPlanNotFound`, `ResourceRequirementsNotFound`, ' +
        '`CheckpointIdNotIncreasing`, `CheckpointNotFound`, `BlobNotFound`, `BlobDataLost`, ' +
        '`ContentSha256Mismatch`, `CleanupIncomplete`, ...',
    }),
    message: Type.String({ description: 'What went wrong, for people.' }),
    statusCode: Type.Integer({ description: 'The HTTP status, repeated.' }),
  },
  { additionalProperties: true, description: 'Every error answer.' },
);

/** An error with more properties than the three of every error. */
export function errorWith<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object({ ...ErrorResponse.properties, ...properties }, { additionalProperties: true, description });
}

export const NotLeaderError = errorWith(
  { leader: Leader },
  '`NotLeader`: `leader` is the current holder of the lease, or null when it is free.',
);
