/** A limit on how deeply a free-form JSON body may nest. */
import type { preValidationHookHandler } from 'fastify';
import { badRequest } from './errors.js';

/** The deepest nesting a free-form JSON value (accumulators, resource requirements) may
 * have: deeper values would overflow the stack of JSON.stringify when stored or answered. */
export const MAX_JSON_DEPTH = 64;

/** A preValidation hook refusing bodies nested deeper than MAX_JSON_DEPTH with a 400
 * (walked with a stack of our own, never by recursion). */
export const shallowBody: preValidationHookHandler = (req, _reply, done) => {
  const pending: [unknown, number][] = [[req.body, 0]];
  while (pending.length) {
    const [value, depth] = pending.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) return done(badRequest(`body is nested deeper than ${MAX_JSON_DEPTH} levels`));
    for (const child of Object.values(value)) pending.push([child, depth + 1]);
  }
  done();
};
