/**
 * The baseline of the HTTP benchmarks (docs/design.md §8): a bare Fastify route, in a process of
 * its own, answering a JSON body of BODY_BYTES bytes already serialized to a string. It
 * answers at any path, with the leader routes' parameters (so that the router does the
 * same work), and has no schema, hook, logger or logic.
 */
import Fastify from 'fastify';

const bytes = Number(process.env.BODY_BYTES ?? 200);
const prefix = '{"pad":"';
const body = prefix + 'x'.repeat(Math.max(0, bytes - prefix.length - 2)) + '"}';

const app = Fastify({ logger: false });
for (const url of ['/v1/clusters/:clusterId/leaders', '/v1/clusters/:clusterId/leaders/:component']) {
  app.get(url, (_req, reply) => {
    reply.type('application/json; charset=utf-8').send(body);
  });
}
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('ready\n');
