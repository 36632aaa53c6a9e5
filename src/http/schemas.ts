/** Request and response schemas of the HTTP API (JSON Schema, through TypeBox). */
import { Type, type Static, type TSchema } from 'typebox';
import type { Config } from '../config.js';
import { CLUSTER_ID_PATTERN, CONTENDER_ID_PATTERN, JOB_ID_PATTERN, SINGLETON_COMPONENTS } from '../ha/ids.js';

const JOB_MANAGER = 'jobmanager/[0-9a-fA-F]{32}';
const ANY_COMPONENT = `(${SINGLETON_COMPONENTS.join('|')}|${JOB_MANAGER})`;

export const ClusterParams = Type.Object({
  clusterId: Type.String({ pattern: CLUSTER_ID_PATTERN }),
});

export const ComponentParams = Type.Object({
  clusterId: Type.String({ pattern: CLUSTER_ID_PATTERN }),
  component: Type.Unsafe<(typeof SINGLETON_COMPONENTS)[number]>({
    type: 'string',
    enum: [...SINGLETON_COMPONENTS],
    description: 'jobmanager/{jobId} for a job manager',
  }),
});

export const JobManagerParams = Type.Object({
  clusterId: Type.String({ pattern: CLUSTER_ID_PATTERN }),
  jobId: Type.String({ pattern: JOB_ID_PATTERN }),
});

/** Consul-style blocking query: `index` (decimal) and `wait` (`500ms`, `30s`, `2m`). */
export const BlockingQuery = Type.Object(
  {
    index: Type.Optional(Type.String({ pattern: '^[0-9]{1,16}$' })),
    wait: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}(ms|s|m)$' })),
  },
  { additionalProperties: false },
);

export const WatchQuery = Type.Object(
  {
    components: Type.Optional(Type.String({ pattern: `^${ANY_COMPONENT}(,${ANY_COMPONENT})*$` })),
    since: Type.Optional(Type.String({ pattern: '^[0-9]{1,16}$' })),
  },
  { additionalProperties: false },
);

const ContenderId = Type.String({ pattern: CONTENDER_ID_PATTERN });
const SessionId = Type.String({ format: 'uuid' });
const Address = Type.String({ minLength: 1, maxLength: 2048 });

export function electionBodies(config: Config) {
  const TtlMs = Type.Integer({ minimum: config.leaseTtl.minMs, maximum: config.leaseTtl.maxMs });
  const strict = { additionalProperties: false };
  return {
    campaign: Type.Object(
      { contenderId: ContenderId, ttlMs: Type.Optional(TtlMs), address: Type.Optional(Address) },
      strict,
    ),
    renew: Type.Object({ contenderId: ContenderId, sessionId: SessionId, ttlMs: Type.Optional(TtlMs) }, strict),
    confirm: Type.Object({ contenderId: ContenderId, sessionId: SessionId, address: Address }, strict),
    resign: Type.Object({ contenderId: ContenderId, sessionId: SessionId }, strict),
  };
}

/**
 * A schema that also allows null, as a type list rather than anyOf: the response
 * serializer then tells the two apart by a typeof check, where anyOf would run a
 * validator for every value.
 */
export function nullable<T extends TSchema & { type: string }>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] });
}

export const Leader = nullable(
  Type.Object({
    contenderId: Type.String(),
    sessionId: Type.String(),
    fencingToken: Type.Integer(),
    address: nullable(Type.String()),
    acquiredAt: Type.String(),
    leaseRemainingMs: Type.Integer(),
  }),
);


export const CampaignResponse = Type.Object({ granted: Type.Boolean(), leader: Leader });
export const LeaseResponse = Type.Object({ leader: Leader });
export const ResignResponse = Type.Object({ released: Type.Boolean() });

export const ErrorResponse = Type.Object(
  {
    error: Type.String(),
    message: Type.String(),
    statusCode: Type.Integer(),
  },
  { additionalProperties: true },
);
