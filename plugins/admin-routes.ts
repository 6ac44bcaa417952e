/**
 * The admin API's routes, in the admin plugin's own encapsulated scope (its prefix, its auth hook,
 * its error handler: bodies are `{ error: { code, message } }` from the gateway's one table).
 * Everything but the console page needs an admin credential.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminAuth } from '../lib/admin/auth.ts'
import { CONSOLE_CSP, consolePage } from '../lib/admin/console-page.ts'
import type { AdminFeed } from '../lib/admin/feed.ts'
import type { Approvals } from '../lib/approval/approvals.ts'
import { GatewayErrors, toJsonRpcError } from '../lib/errors.ts'
import type { Upstream } from '../lib/upstream/types.ts'
import { within } from '../lib/within.ts'

export interface AdminRoutesOptions {
  auth: AdminAuth
  feed: AdminFeed
  approvals: Approvals
  console: boolean
  prefix: string
}

/** Longest an upstream's health probe may take for the list. */
const PROBE_MS = 2000
const SESSIONS_MAX = 1000

declare module 'fastify' {
  interface FastifyContextConfig {
    /** An admin route anyone may fetch (the console page: it holds no data). */
    adminPublic?: boolean
  }
  interface FastifyRequest {
    /** The admin using the admin API (its key's name, or its token's subject). */
    mcpAdmin: string | null
  }
}

// `propertyNames`, not `additionalProperties: false`: Fastify's Ajv would strip unknown keys
// silently; an admin API refuses them.
const decisionBody = {
  type: 'object',
  propertyNames: { enum: ['reason'] },
  properties: { reason: { type: 'string', maxLength: 1000 } }
} as const

const approvalParams = {
  type: 'object',
  properties: { id: { type: 'string', maxLength: 64 } }
} as const

const pinBody = {
  type: 'object',
  propertyNames: { enum: ['upstream', 'tool', 'hash'] },
  required: ['upstream', 'tool', 'hash'],
  properties: { upstream: { type: 'string', minLength: 1 }, tool: { type: 'string', minLength: 1 }, hash: { type: 'string', minLength: 1 } }
} as const

export function adminRoutes (scope: FastifyInstance, options: AdminRoutesOptions): void {
  const { auth, feed, approvals } = options
  scope.decorateRequest('mcpAdmin', null)
  scope.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.adminPublic === true) return
    try {
      request.mcpAdmin = await auth.verify(request.headers)
    } catch (err) {
      void reply.header('www-authenticate', 'Bearer realm="mcp-gateway-admin"')
      throw err
    }
  })
  scope.setErrorHandler((err: Error & { statusCode?: number, code?: string, validation?: unknown }, request, reply) => {
    const status = err.validation !== undefined ? 400 : toJsonRpcError(err).status
    if (status >= 500) request.log.error({ err }, 'admin API request failed')
    void reply.code(status).send({ error: { code: err.code ?? 'MCP_GW_ADMIN_ERROR', message: status >= 500 && err.code === undefined ? 'Internal error' : err.message } })
  })

  if (options.console) {
    const page = consolePage(options.prefix)
    scope.get('/', { config: { adminPublic: true } }, async (_request, reply) => {
      void reply.header('content-type', 'text/html; charset=utf-8')
      void reply.header('content-security-policy', CONSOLE_CSP)
      void reply.header('cache-control', 'no-store')
      return page
    })
  }

  scope.get('/api/whoami', async (request) => ({ name: request.mcpAdmin }))

  sessionRoutes(scope)
  scope.get('/api/upstreams', async () => ({ upstreams: await upstreamsWithHealth(scope) }))

  scope.get('/api/approvals', async () => ({ approvals: await approvals.pending() }))
  const decide = (approve: boolean) => async (request: FastifyRequest<{ Params: { id: string }, Body: { reason?: string } | undefined }>) => {
    const result = await approvals.decide(request.params.id, approve, request.mcpAdmin as string, request.body?.reason)
    if (result === 'unknown') throw new GatewayErrors.ADMIN_NOT_FOUND(`no call waits for approval as ${request.params.id}`)
    if (result === 'not-allowed') throw new GatewayErrors.ADMIN_FORBIDDEN(`${request.mcpAdmin as string} may not decide this call (its rule names who may)`)
    if (result === 'already-decided') throw new GatewayErrors.ADMIN_CONFLICT('the call was decided already')
    request.log.info({ approval: request.params.id, approve, by: request.mcpAdmin }, 'approval decided by an admin')
    return { id: request.params.id, outcome: approve ? 'approved' : 'denied', by: request.mcpAdmin }
  }
  scope.post('/api/approvals/:id/approve', { schema: { body: decisionBody, params: approvalParams } }, decide(true))
  scope.post('/api/approvals/:id/deny', { schema: { body: decisionBody, params: approvalParams } }, decide(false))

  pinRoutes(scope)
  tapeRoutes(scope)
  identityRoutes(scope)
  scope.get('/api/policy', async () => policyState(scope))
  scope.get('/api/audit', async () => {
    if (!scope.hasDecorator('mcpAudit')) return { enabled: false }
    const audit = scope.mcpAudit
    return { enabled: true, head: audit.chainHead, written: audit.written, dropped: audit.dropped, failed: audit.failed, queued: audit.queued }
  })

  scope.get('/api/events', async (request, reply) => {
    // Headers the host's hooks set on the reply so far go on the stream too.
    const added = feed.add(reply.raw, reply.getHeaders() as Record<string, string | number | string[]>)
    if (added === 'full') throw new GatewayErrors.ADMIN_BUSY('the event feed has its maximum of listeners')
    reply.hijack()
    if (added === 'gone') reply.raw.destroy()
    else request.log.debug('admin feed opened')
  })
}

function sessionRoutes (scope: FastifyInstance): void {
  scope.get('/api/sessions', async (request: FastifyRequest<{ Querystring: { limit?: string } }>) => {
    const limit = Math.min(SESSIONS_MAX, Math.max(1, Number(request.query.limit ?? 100) || 100))
    return { sessions: await scope.mcpSessions.list(limit), total: await scope.mcpSessions.count() }
  })
  scope.get('/api/sessions/:id', async (request: FastifyRequest<{ Params: { id: string } }>) => {
    const session = await scope.mcpSessions.find(request.params.id)
    if (session === undefined) throw new GatewayErrors.ADMIN_NOT_FOUND(`no session ${request.params.id}`)
    return session
  })
  scope.delete('/api/sessions/:id', async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    if (!await scope.mcpSessions.end(request.params.id, 'deleted')) throw new GatewayErrors.ADMIN_NOT_FOUND(`no session ${request.params.id}`)
    request.log.info({ session: request.params.id, by: request.mcpAdmin }, 'session ended by an admin')
    return await reply.code(204).send()
  })
}

function pinRoutes (scope: FastifyInstance): void {
  scope.get('/api/pins', async () => scope.hasDecorator('mcpPins') ? { enabled: true, pending: await scope.mcpPins.pending() } : { enabled: false, pending: [] })
  scope.post('/api/pins/approve', { schema: { body: pinBody } }, async (request: FastifyRequest<{ Body: { upstream: string, tool: string, hash: string } }>) => {
    if (!scope.hasDecorator('mcpPins')) throw new GatewayErrors.ADMIN_NOT_FOUND('tool pinning is off')
    const { upstream, tool, hash } = request.body
    const pin = await scope.mcpPins.approve(upstream, tool, request.mcpAdmin as string, hash)
    if (pin === undefined) throw new GatewayErrors.ADMIN_CONFLICT(`no definition of ${upstream}/${tool} with hash ${hash} waits for approval (it may have changed again)`)
    return { upstream, tool, pin }
  })
}

const tapeBody = {
  type: 'object',
  required: ['session'],
  propertyNames: { enum: ['session'] },
  properties: { session: { type: 'string', minLength: 1, maxLength: 200 } }
} as const

function tapeRoutes (scope: FastifyInstance): void {
  const tapes = (): FastifyInstance['mcpTapes'] => {
    if (!scope.hasDecorator('mcpTapes')) throw new GatewayErrors.ADMIN_NOT_FOUND('tapes are off (the "tapes" option)')
    return scope.mcpTapes
  }
  scope.get('/api/tapes', async () => scope.hasDecorator('mcpTapes') ? { enabled: true, tapes: await scope.mcpTapes.list() } : { enabled: false, tapes: [] })
  scope.post('/api/tapes', { schema: { body: tapeBody } }, async (request: FastifyRequest<{ Body: { session: string } }>) => {
    const info = await tapes().record(request.body.session)
    if (info === undefined) throw new GatewayErrors.ADMIN_NOT_FOUND(`no session ${request.body.session}`)
    request.log.info({ tape: info.id, session: info.session, by: request.mcpAdmin }, 'tape started by an admin')
    return info
  })
  scope.post('/api/tapes/:id/stop', async (request: FastifyRequest<{ Params: { id: string } }>) => {
    if (!await tapes().stop(request.params.id)) throw new GatewayErrors.ADMIN_NOT_FOUND(`no tape ${request.params.id} is recording`)
    return { id: request.params.id, recording: false }
  })
  scope.get('/api/tapes/:id', async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const path = tapes().pathOf(request.params.id)
    const found = path === undefined ? undefined : await stat(path).catch(() => undefined)
    if (path === undefined || found?.isFile() !== true) throw new GatewayErrors.ADMIN_NOT_FOUND(`no tape ${request.params.id}`)
    void reply.header('content-type', 'application/x-ndjson')
    void reply.header('content-disposition', `attachment; filename="${request.params.id}.tape.jsonl"`)
    return await reply.send(createReadStream(path))
  })
}

/** Most principals listed per upstream: the list is for looking up, not for export. */
const IDENTITIES_LISTED = 1000

function identityRoutes (scope: FastifyInstance): void {
  scope.get('/api/identities', async () => {
    if (!scope.hasDecorator('mcpIdentity')) return { enabled: false, upstreams: [] }
    const identity = scope.mcpIdentity
    return { enabled: true, upstreams: await Promise.all(identity.upstreams.map(async (name) => ({ name, principals: await identity.principals(name, IDENTITIES_LISTED) }))) }
  })
  scope.delete('/api/identities/:upstream/:principal', async (request: FastifyRequest<{ Params: { upstream: string, principal: string } }>, reply: FastifyReply) => {
    if (!scope.hasDecorator('mcpIdentity')) throw new GatewayErrors.ADMIN_NOT_FOUND('per-user upstream identity is off (the "identity" option)')
    const { upstream, principal } = request.params
    if (!await scope.mcpIdentity.revoke(upstream, principal)) throw new GatewayErrors.ADMIN_NOT_FOUND(`${principal} holds no token for ${upstream}`)
    request.log.info({ upstream, principal, by: request.mcpAdmin }, 'upstream token revoked by an admin')
    return await reply.code(204).send()
  })
}

function policyState (scope: FastifyInstance): Record<string, unknown> {
  if (!scope.hasDecorator('mcpPolicy')) return { enabled: false }
  const gate = scope.mcpPolicy
  const policy = gate.policy
  return {
    enabled: true,
    version: gate.version,
    reloadFailed: gate.reloadFailed,
    default: policy.default,
    rules: policy.rules.map((rule) => ({ name: rule.name, effect: rule.effect, when: rule.when })),
    decisions: Object.fromEntries(gate.decisions)
  }
}

/** `ok`, or why the upstream cannot serve (its probe's error, or no answer in time). */
async function probe (name: string, upstream: Upstream): Promise<string> {
  return await within(upstream.probe(), PROBE_MS, name).then(() => 'ok', (err: unknown) => (err as Error).message)
}

async function upstreamsWithHealth (scope: FastifyInstance): Promise<unknown[]> {
  return await Promise.all([...scope.mcpUpstreams].map(async ([name, upstream]) => ({
    name,
    kind: upstream.kind,
    era: upstream.era ?? null,
    health: await probe(name, upstream),
    members: await Promise.all((upstream.members?.() ?? []).map(async (member) => ({ name: member.name, kind: member.upstream.kind, health: await probe(member.name, member.upstream) })))
  })))
}
