/**
 * What every other gateway plugin shares, created once, before any of them: the registries
 * (upstreams, endpoints, observers) and the one ordered close (`ShutdownSequence`, run in this
 * plugin's own `preClose` hook, registered before any other plugin's, so before
 * `@fastify/websocket` closes its sockets). The sessions plugin depends on it, and every other
 * plugin on sessions, so these decorators are there whenever a gateway plugin is.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ConnectionTracker } from '../lib/connections.ts'
import type { JsonRpcMessage } from '../lib/jsonrpc.ts'
import type { ExchangeObserver } from '../lib/observer.ts'
import { ShutdownSequence } from '../lib/shutdown.ts'
import type { Principal } from '../lib/auth/principal.ts'
import type { Upstream } from '../lib/upstream/types.ts'
import type { McpEndpoint } from './proxy.ts'

/** How long an idle client socket may still deliver a request (answered 503) before it is ended. */
const IDLE_GRACE_MS = 200

declare module 'fastify' {
  interface FastifyInstance {
    /** Every upstream an MCP endpoint of this server proxies to, by name. */
    mcpUpstreams: Map<string, Upstream>
    /** Every MCP endpoint of this server, by upstream name. */
    mcpEndpoints: Map<string, McpEndpoint>
    /** Watchers of MCP traffic (metrics, tracing): push one to be told about every message. */
    mcpObservers: ExchangeObserver[]
    /** The gateway's close, phase by phase: plugins add their steps to it. */
    mcpShutdown: ShutdownSequence
  }
  interface FastifyRequest {
    /** The JSON-RPC messages of a POST body, parsed once; null for GET and DELETE. */
    mcpMessages: JsonRpcMessage[] | null
    /** Who is calling, set by the auth plugin; null when inbound auth is off. */
    mcpPrincipal: Principal | null
  }
}

async function mcpCore (fastify: FastifyInstance): Promise<void> {
  fastify.decorate('mcpUpstreams', new Map())
  fastify.decorate('mcpEndpoints', new Map())
  fastify.decorate('mcpObservers', [])
  const shutdown = new ShutdownSequence()
  fastify.decorate('mcpShutdown', shutdown)
  fastify.decorateRequest('mcpMessages', null)
  fastify.decorateRequest('mcpPrincipal', null)

  // Node's closeIdleConnections() skips sockets that never sent a request (see ConnectionTracker).
  const tracker = new ConnectionTracker(fastify.server)
  shutdown.add('sockets', 'idle client sockets', async () => { await tracker.closeIdle(IDLE_GRACE_MS) })
  fastify.addHook('preClose', async () => { await shutdown.run(fastify.log) })
}

export default fp(mcpCore, { name: 'mcp-gateway-core', fastify: '5.x' })
