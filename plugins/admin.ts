/**
 * The admin API and console (off unless configured), at `<path>/api/...` and `<path>/`, with
 * their own credentials: sessions, upstreams and their health, calls held for approval (approve,
 * deny), tool pins (approve a new definition), the policy in force, the audit log's state, and a
 * live feed of events (SSE). It is where approval lives: `approve` rules hold calls in
 * `fastify.mcpApprovals` (in memory, or in Redis when the gateway's store is Redis, so an admin on
 * any instance decides a call held on another).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { AdminAuth } from '../lib/admin/auth.ts'
import { AdminFeed } from '../lib/admin/feed.ts'
import { Approvals } from '../lib/approval/approvals.ts'
import { MemoryApprovalStore, type ApprovalStore } from '../lib/approval/store.ts'
import { DEFAULT_REDACT, Redactor } from '../lib/audit/record.ts'
import { invalid } from '../lib/options.ts'
import { RedisApprovalStore } from '../lib/redis/approval-store.ts'
import { checkAdminOptions, type McpAdminOptions } from './admin-options.ts'
import { adminRoutes } from './admin-routes.ts'

export type { McpAdminOptions } from './admin-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Calls held for approval: `pending()`, `decide(id, approve, by)`, counts. */
    mcpApprovals: Approvals
  }
}

async function mcpAdmin (fastify: FastifyInstance, options: McpAdminOptions): Promise<void> {
  const checked = checkAdminOptions(options)
  const auth = new AdminAuth({ apiKeys: checked.apiKeys, jwt: checked.jwt })
  await refuseSharedKeys(fastify, checked.apiKeys ?? [])

  const stores = fastify.hasDecorator('mcpStores') ? fastify.mcpStores : undefined
  const store: ApprovalStore = stores?.client === undefined ? new MemoryApprovalStore() : new RedisApprovalStore(stores.client, stores.keyPrefix ?? 'mcp-gw:')
  // Arguments shown to approvers are redacted as the audit log's are.
  const redact = fastify.hasDecorator('mcpAudit') ? fastify.mcpAudit.redact : DEFAULT_REDACT
  const approvals = new Approvals({ store, redactor: new Redactor(redact), log: fastify.log })
  fastify.addHook('onClose', async () => { await approvals.close() })
  await approvals.start()
  fastify.decorate('mcpApprovals', approvals)
  if (fastify.hasDecorator('mcpPolicy')) fastify.mcpPolicy.approvals = approvals

  const feed = new AdminFeed(checked.maxFeeds)
  approvals.listeners.push((event) => {
    if (event.kind === 'held') feed.publish({ type: 'approval-held', data: event.call })
    else if (event.kind === 'decided') feed.publish({ type: 'approval-decided', data: { id: event.id, ...event.decision } })
  })
  if (fastify.hasDecorator('mcpPins')) {
    const pins = fastify.mcpPins
    const before = pins.onEvent
    pins.onEvent = (event) => {
      before?.(event)
      feed.publish({ type: 'pin', data: event })
    }
  }
  fastify.mcpSessions.onEnd((record, reason) => { feed.publish({ type: 'session-ended', data: { id: record.id, upstream: record.upstream, reason } }) })

  // Held calls end first (nobody is left to approve them), so the drain does not wait for them.
  fastify.mcpShutdown.add('drain', 'calls held for approval', async () => { await approvals.cancelAll() })
  fastify.mcpShutdown.add('end', 'admin event feeds', async () => { feed.close() })

  await fastify.register(async (scope) => { adminRoutes(scope, { auth, feed, approvals, console: checked.console, prefix: checked.path }) }, { prefix: checked.path })
  fastify.log.info({ prefix: checked.path, keys: checked.apiKeys?.length ?? 0, jwt: checked.jwt !== undefined }, 'admin API on')
}

/** An admin key that also opens the MCP endpoints would make every MCP client an admin. */
async function refuseSharedKeys (fastify: FastifyInstance, keys: Array<{ name: string, key: string }>): Promise<void> {
  if (!fastify.hasDecorator('mcpAuth')) return
  for (const [index, { key }] of keys.entries()) {
    const opens = await fastify.mcpAuth.verifier.verify({ authorization: `Bearer ${key}` }).then(() => true, () => false)
    if (opens) throw invalid(`admin.apiKeys[${index}].key`, 'also opens the MCP endpoints: the admin API needs credentials of its own')
  }
}

export default fp(mcpAdmin, { name: 'mcp-gateway-admin', fastify: '5.x', dependencies: ['mcp-gateway-sessions'] })
