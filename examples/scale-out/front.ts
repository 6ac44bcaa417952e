/**
 * A plain round-robin HTTP front for several gateway instances: no stickiness, no MCP knowledge,
 * what a stock load balancer does. Each request goes to the next instance; one that refuses the
 * connection (stopped, restarting) or answers 503 (draining) is skipped for the next. Response bodies, SSE included, are piped as they
 * come, never buffered. For the example and the tests; in production use your load balancer.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FrontOptions {
  /** Base URLs of the instances, e.g. `http://127.0.0.1:3001`. */
  targets: string[]
  /** @default 0 (any free port) */
  port?: number
  /** @default '127.0.0.1' */
  host?: string
  /** Picks the first instance to try (an index into `targets`); round-robin by default. */
  pick?: (req: IncomingMessage) => number
}

export interface Front {
  url: string
  /** Requests each instance answered (by index), for tests and the example's printout. */
  served: number[]
  close: () => Promise<void>
}

const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET'])
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer'])

export async function startFront (options: FrontOptions): Promise<Front> {
  const targets = options.targets.map((target) => new URL(target))
  const served = targets.map(() => 0)
  let next = 0
  const pick = options.pick ?? (() => next++ % targets.length)

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, index: number, tries: number): void => {
    const target = targets[index] as URL
    const headers = { ...req.headers }
    for (const name of HOP_BY_HOP) delete headers[name]
    headers['content-length'] = String(body.length)
    // A connection per request: a reused one may be closed by a stopping instance just as a request
    // goes out on it, and a POST cannot be safely sent twice.
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: false }, (answer) => {
      if (answer.statusCode === 503 && tries + 1 < targets.length) {
        answer.resume()
        forward(req, res, body, (index + 1) % targets.length, tries + 1)
        return
      }
      served[index] = (served[index] as number) + 1
      const out: Record<string, string | string[]> = {}
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
      res.writeHead(answer.statusCode ?? 502, out)
      res.flushHeaders()
      answer.pipe(res)
      // An instance that dies mid-stream cuts the client's stream too: the client resumes.
      answer.once('error', () => res.destroy())
      answer.once('aborted', () => res.destroy())
    })
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      // Refused, or reset before any answer (a stopping instance closing its listener with this
      // connection still in the accept queue): the instance never read the request.
      if (!res.headersSent && RETRYABLE.has(err.code ?? '') && tries + 1 < targets.length) {
        forward(req, res, body, (index + 1) % targets.length, tries + 1)
      } else if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: `no gateway instance reachable (${err.code ?? err.message})` } }))
      } else {
        res.destroy()
      }
    })
    res.once('close', () => { if (!res.writableFinished) upstream.destroy() })
    upstream.end(body)
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.once('end', () => forward(req, res, Buffer.concat(chunks), pick(req) % targets.length, 0))
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    close: () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}
