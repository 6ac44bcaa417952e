/**
 * Shutdown in two phases, as Fastify intends: streams end in `preClose` (the proxy's own hook),
 * then this plugin ends every client socket left without a request, so `close()` never waits on a
 * connection that will not send anything. Signals stay with the CLI.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ConnectionTracker } from '../lib/connections.ts'

async function mcpShutdown (fastify: FastifyInstance): Promise<void> {
  const tracker = new ConnectionTracker(fastify.server)
  fastify.addHook('preClose', async () => {
    tracker.closeIdle()
  })
}

export default fp(mcpShutdown, {
  name: 'mcp-gateway-shutdown',
  fastify: '5.x',
  dependencies: ['mcp-gateway-proxy']
})
