/**
 * Tool pinning (`fastify.mcpPins`): the first definition of every tool is pinned in the store
 * (memory, or Redis when the gateway's store is Redis, shared by every instance), and a changed
 * or new one is served only once approved (`mcpPins.approve`, or the admin API). Runs as
 * interceptors on the gateway's chain (lib/pinning/pins.ts), so it holds on every endpoint.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ToolPins } from '../lib/pinning/pins.ts'
import { MemoryPinStore } from '../lib/pinning/store.ts'
import { RedisPinStore } from '../lib/redis/pin-store.ts'
import { checkPinningOptions, type McpPinningOptions } from './pinning-options.ts'

export type { McpPinningOptions } from './pinning-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Tool pins: definitions waiting for approval (`pending()`), `approve()`, counts. */
    mcpPins: ToolPins
  }
}

async function mcpPinning (fastify: FastifyInstance, options: McpPinningOptions): Promise<void> {
  const checked = checkPinningOptions(options)
  const stores = fastify.hasDecorator('mcpStores') ? fastify.mcpStores : undefined
  const store = stores?.client === undefined ? new MemoryPinStore() : new RedisPinStore(stores.client, stores.keyPrefix ?? 'mcp-gw:')
  const pins = new ToolPins({ store, mode: checked.mode, newTools: checked.newTools, baselineMs: checked.baselineMs, log: fastify.log })
  for (const interceptor of pins.interceptors()) fastify.mcpInterceptors.add(interceptor)
  fastify.decorate('mcpPins', pins)
  if (fastify.hasDecorator('mcpAudit')) {
    const audit = fastify.mcpAudit
    pins.onEvent = (event) => {
      audit.add({ time: new Date().toISOString(), type: 'pin', upstream: event.upstream, tool: event.tool, change: event.kind, hash: event.hash, previous: event.previous ?? null, approver: event.approver ?? null })
    }
  }
}

export default fp(mcpPinning, { name: 'mcp-gateway-pinning', fastify: '5.x', dependencies: ['mcp-gateway-interceptors'] })
