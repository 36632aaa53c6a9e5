/** JSON POSTs over kept-alive node:http connections: they cost the bench far less CPU than
 * fetch, on a machine whose cores the server needs. */
import { Agent, request } from 'node:http';

const agent = new Agent({ keepAlive: true, maxSockets: 32 });

export function post(url: string, body: unknown, timeoutMs = 10_000): Promise<{ status: number; body: any }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
          } catch (err) {
            reject(err as Error);
          }
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** A POST that must answer 200: its body. */
export async function ok(url: string, body: unknown): Promise<any> {
  const r = await post(url, body);
  if (r.status !== 200) throw new Error(`POST ${url} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Closes the kept-alive connections, so that the process can end. */
export function closeConnections(): void {
  agent.destroy();
}
