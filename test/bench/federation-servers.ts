/**
 * The federation benchmark's servers: four demo upstreams, the fourth behind a proxy that holds
 * every POST 200 ms (the slow SaaS backend) in a process of its own (in one process with the
 * others, its 200 ms would start only once they were answered), and a gateway with two virtual servers over them
 * (`/mcp/cold`: no list cache; `/mcp/warm`: the default cache) beside the first upstream on its
 * own endpoint (`/mcp/direct`), so both are measured through the same gateway process.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startDemoUpstream } from '../../examples/demo-upstream/server.ts'
import { createGateway } from '../../examples/gateway/create-gateway.ts'

export const SLOW_MS = 200

/** A proxy that waits `delayMs` before passing each POST on (GET streams go through at once). */
async function delayed (target: string, delayMs: number): Promise<string> {
  const url = new URL(target)
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const forward = (): void => {
        const out = request({ host: url.hostname, port: url.port, path: url.pathname, method: req.method, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        })
        out.on('error', () => { res.destroy() })
        res.on('close', () => { out.destroy() })
        out.end(Buffer.concat(chunks))
      }
      if (req.method === 'POST') setTimeout(forward, delayMs)
      else forward()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${url.pathname}`
}

/** The three fast upstreams. */
export async function startFederationUpstreams (): Promise<string[]> {
  const upstreams = await Promise.all([1, 2, 3].map(async () => await startDemoUpstream({ jsonResponse: true, recordRequests: false })))
  return upstreams.map((up) => up.url)
}

/** The slow one, behind its delaying proxy. */
export async function startSlowUpstream (): Promise<string> {
  const up = await startDemoUpstream({ jsonResponse: true, recordRequests: false })
  return await delayed(up.url, SLOW_MS)
}

export async function startFederationGateway (urls: string[]): Promise<string> {
  const members = urls.map((url, index) => ({ namespace: `m${index + 1}`, upstream: { name: `m${index + 1}`, url, protocol: '2025' as const } }))
  const app = await createGateway({
    logLevel: false,
    upstreams: [
      { name: 'cold', kind: 'virtual', path: '/mcp/cold', cacheTtl: 0, members },
      { name: 'warm', kind: 'virtual', path: '/mcp/warm', members },
      { name: 'direct', url: urls[0] as string, protocol: '2025', path: '/mcp/direct' }
    ]
  })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  return address
}
