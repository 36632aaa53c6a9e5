/** Flink's ExecutionPlanStore: each job's plan as bytes, its resource requirements as
 * JSON, and the set of job ids with a plan. */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { HaError } from './errors.js';
import type { ClusterKeys } from './ids.js';
import { redisCall } from './redisCall.js';
import type { Fence, IdempotencyKey, StoreWriter } from './storeWriter.js';

export class RedisExecutionPlanStore {
  constructor(
    private readonly redis: Redis,
    private readonly writer: StoreWriter,
  ) {}

  /** putExecutionPlan: replaces any earlier plan of the job. */
  async put(keys: ClusterKeys, jobId: string, plan: Buffer, fence: Fence, idem: IdempotencyKey) {
    const r = await this.writer.write(
      'plan_put',
      { keys, owner: 'dispatcher', fence, idempotencyKey: idem, request: [jobId, sha256(plan)] },
      () => ({ keys: [keys.plan(jobId), keys.plans], args: [jobId, plan] }),
    );
    return { replayed: r.replayed };
  }

  /** recoverExecutionPlan. */
  async get(keys: ClusterKeys, jobId: string): Promise<Buffer> {
    const plan = await redisCall(() => this.redis.getBuffer(keys.plan(jobId)));
    if (!plan) throw new HaError('ExecutionPlanNotFound', 'the job has no execution plan');
    return plan;
  }

  /** getJobIds. */
  async jobIds(keys: ClusterKeys): Promise<string[]> {
    return (await redisCall(() => this.redis.smembers(keys.plans))).sort();
  }

  /** putJobResourceRequirements; ExecutionPlanNotFound when the job has no plan. */
  async putRequirements(keys: ClusterKeys, jobId: string, requirements: unknown, fence: Fence, idem: IdempotencyKey) {
    const json = JSON.stringify(requirements);
    const r = await this.writer.write(
      'plan_requirements',
      { keys, owner: 'dispatcher', fence, idempotencyKey: idem, request: [jobId, json] },
      () => ({ keys: [keys.plan(jobId), keys.planRequirements(jobId)], args: [json] }),
    );
    return { replayed: r.replayed };
  }

  async getRequirements(keys: ClusterKeys, jobId: string): Promise<unknown> {
    const [hasPlan, json] = await redisCall(() =>
      Promise.all([this.redis.exists(keys.plan(jobId)), this.redis.get(keys.planRequirements(jobId))]),
    );
    if (!hasPlan) throw new HaError('ExecutionPlanNotFound', 'the job has no execution plan');
    if (json === null) throw new HaError('ResourceRequirementsNotFound', 'the job has no resource requirements');
    return JSON.parse(json);
  }
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
