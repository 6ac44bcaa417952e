/**
 * An MCP upstream that wants tokens meant for it, as a resource server in front of a real MCP
 * server would: every request's bearer token is verified with `jose` against the authorization
 * server's JWKS (signature, issuer, its own audience, expiry with no tolerance); a missing or bad
 * one gets 401 with an RFC 9728 `WWW-Authenticate` challenge. It serves its protected resource
 * metadata, and records what it saw: each token's subject, audience and actor.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { createRemoteJWKSet, jwtVerify } from 'jose'

interface Teardown {
  teardown (fn: () => unknown): void
}

export interface Seen {
  sub: string
  aud: string
  act?: string
  token: string
  method: string
}

export interface ProtectedUpstream {
  /** Its MCP endpoint (`/mcp`), also its resource URI. */
  url: string
  seen: Seen[]
  /** Refused from now on, as a revoked token would be. */
  refuse: (token: string) => void
  /** Every token refused from now on. */
  refuseAll: () => void
  /** 401s answered. */
  refusals: () => number
}

const HOP = new Set(['host', 'authorization', 'connection', 'keep-alive', 'transfer-encoding', 'content-length'])

export async function protectedUpstream (t: Teardown, issuer: string, inner: string): Promise<ProtectedUpstream> {
  const keys = createRemoteJWKSet(new URL(`${issuer}/jwks`))
  const seen: Seen[] = []
  const refused = new Set<string>()
  let refusals = 0
  let refuseAll = false
  let resource = ''
  const challenge = (res: ServerResponse, error?: string): void => {
    refusals++
    const origin = new URL(resource).origin
    res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"${error === undefined ? '' : `, error="${error}"`}`, 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: error ?? 'unauthorized' }))
  }
  const server = createServer((req, res) => { void handle(req, res) })
  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url?.startsWith('/.well-known/oauth-protected-resource') === true) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ resource, authorization_servers: [issuer], bearer_methods_supported: ['header'] }))
      return
    }
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')
    if (match === null) return challenge(res)
    const token = match[1] as string
    if (refused.has(token) || refuseAll) return challenge(res, 'invalid_token')
    let payload
    try {
      ({ payload } = await jwtVerify(token, keys, { issuer, audience: resource, clockTolerance: 0 }))
    } catch {
      return challenge(res, 'invalid_token')
    }
    const act = (payload.act as { sub?: string } | undefined)?.sub
    seen.push({ sub: String(payload.sub), aud: String(payload.aud), token, method: req.method ?? '', ...(act === undefined ? {} : { act }) })
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(req.headers)) if (!HOP.has(name) && typeof value === 'string') headers[name] = value
    try {
      const answer = await request(inner, { method: req.method as 'POST', headers, body: req.method === 'POST' ? req : null })
      const out: Record<string, string> = {}
      for (const [name, value] of Object.entries(answer.headers)) if (!HOP.has(name) && typeof value === 'string') out[name] = value
      res.writeHead(answer.statusCode, out)
      // As the server behind it does: an SSE stream's headers leave before its first event.
      res.flushHeaders()
      // The client gone (a GET stream ended) ends the inner request too; its abort is no failure.
      answer.body.on('error', () => {}).pipe(res)
      res.once('close', () => { answer.body.destroy() })
    } catch {
      if (!res.headersSent) res.writeHead(502)
      res.end()
    }
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  resource = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: resource, seen, refuse: (token) => { refused.add(token) }, refuseAll: () => { refuseAll = true }, refusals: () => refusals }
}
