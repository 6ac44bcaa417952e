/**
 * The umbrella plugin: registers every gateway plugin in dependency order. Each is usable on its
 * own too (`plugins/sessions.ts`, `plugins/proxy.ts`).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { invalid, isPlainObject } from '../lib/options.ts'
import type { UpstreamConfig } from '../lib/upstream/create.ts'
import mcpProxy, { type McpProxyOptions } from './proxy.ts'
import mcpSessions, { type McpSessionsOptions } from './sessions.ts'
import mcpHealth from './health.ts'
import mcpMetrics from './metrics.ts'
import mcpTracing from './tracing.ts'
import mcpCore from './core.ts'
import mcpStreaming, { type McpStreamingOptions } from './streaming.ts'
import mcpStore, { type McpStoreOptions } from './store.ts'
import mcpInterceptors from './interceptors.ts'
import mcpAuth from './auth.ts'
import mcpIdentity from './identity.ts'
import mcpPolicy from './policy.ts'
import mcpAudit from './audit.ts'
import mcpPinning from './pinning.ts'
import mcpAdmin from './admin.ts'
import mcpTapes from './tapes.ts'
import mcpRateLimit from './rate-limit.ts'
import mcpWebSocket from './websocket.ts'
import type { McpGatewayOptions } from './gateway-options.ts'

export type { McpGatewayOptions, NamedUpstream } from './gateway-options.ts'

async function mcpGateway (fastify: FastifyInstance, options: McpGatewayOptions): Promise<void> {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'must be an object')
  const { store, interceptors, auth, identity, policy, audit, pinning, tapes, admin, rateLimit, websocket, sessions, streaming, health, metrics, tracing, ...proxy } = options
  if (sessions !== undefined && !isPlainObject(sessions)) throw invalid('sessions', 'must be an object')
  if (streaming !== undefined && streaming !== false && !isPlainObject(streaming)) throw invalid('streaming', 'must be an object or false')
  // Typed copies: the checks above narrow the originals to plain records.
  const sessionOptions: McpSessionsOptions = { ...options.sessions }
  const streamingOptions: McpStreamingOptions | false = options.streaming === false ? false : { ...options.streaming }
  // The Redis event log keeps what the streaming plugin's retention says, unless told otherwise.
  const retention = streamingOptions === false ? undefined : streamingOptions.retention
  const storeOptions: McpStoreOptions = store?.type === 'redis' && store.retention === undefined && retention !== undefined
    ? { ...store, retention }
    : store ?? { type: 'memory' }
  await fastify.register(mcpCore)
  await fastify.register(mcpStore, storeOptions)
  const stores = fastify.mcpStores
  await fastify.register(mcpSessions, { ...sessionOptions, store: sessionOptions.store ?? stores.sessions })
  if (streamingOptions !== false) await fastify.register(mcpStreaming, { ...streamingOptions, store: streamingOptions.store ?? stores.events })
  await fastify.register(mcpInterceptors, interceptors ?? {})
  if (auth !== undefined) await fastify.register(mcpAuth, auth)
  if (identity !== undefined) await fastify.register(mcpIdentity, identity)
  if (audit !== undefined) await fastify.register(mcpAudit, audit)
  // Before the policy: lists reach it with pinned definitions (the annotations it learns are approved ones).
  if (pinning !== undefined) await fastify.register(mcpPinning, pinning)
  if (policy !== undefined) await fastify.register(mcpPolicy, policy)
  if (tapes !== undefined) await fastify.register(mcpTapes, tapes)
  // After the policy (its approve rules hold calls here) and pinning (its approvals are served here).
  if (admin !== undefined) await fastify.register(mcpAdmin, admin)
  if (rateLimit !== undefined) await fastify.register(mcpRateLimit, rateLimit)
  if (auth === undefined) {
    // Loopback-only is the default; anything wider without auth is worth a line at startup.
    fastify.addHook('onListen', async () => {
      const exposed = fastify.addresses().flatMap((address) => typeof address === 'string' || isLoopback(address.address) ? [] : [address.address])
      if (exposed.length > 0) {
        fastify.log.warn({ addresses: exposed }, 'the MCP gateway listens beyond loopback with inbound auth off: anyone who can reach it can use its upstreams (see SECURITY.md)')
      }
    })
  }
  const { upstreams, upstream, ...endpoint } = proxy
  if (upstreams === undefined) {
    await fastify.register(mcpProxy, { ...endpoint, upstream: upstream as McpProxyOptions['upstream'] })
  } else {
    if (upstream !== undefined) throw invalid('upstreams', 'give "upstream" or "upstreams", not both')
    if (!Array.isArray(upstreams) || upstreams.length === 0) throw invalid('upstreams', 'must be a non-empty array of upstreams, each with a name')
    if (endpoint.path !== undefined) throw invalid('path', 'with "upstreams", give each upstream its own path')
    const paths = new Set<string>()
    for (const [index, entry] of upstreams.entries()) {
      if (!isPlainObject(entry as unknown) || typeof entry.name !== 'string' || entry.name.length === 0) throw invalid(`upstreams[${index}].name`, 'is required (a non-empty string)')
      const { path = `/mcp/${entry.name}`, ...options } = entry
      if (paths.has(path)) throw invalid(`upstreams[${index}].path`, `"${path}" is already taken by another upstream`)
      paths.add(path)
      await fastify.register(mcpProxy, { ...endpoint, upstream: options as UpstreamConfig, path })
    }
  }
  if (websocket !== undefined && websocket !== false) await fastify.register(mcpWebSocket, websocket === true ? {} : websocket)
  if (health !== false) await fastify.register(mcpHealth, health ?? {})
  if (metrics !== false) await fastify.register(mcpMetrics, metrics ?? {})
  if (tracing !== undefined && tracing !== false) await fastify.register(mcpTracing, tracing === true ? {} : tracing)
}

function isLoopback (address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === 'localhost' || address.startsWith('::ffff:127.')
}

export default fp(mcpGateway, { name: 'mcp-gateway', fastify: '5.x' })
