/**
 * Shutdown in two phases, as Fastify intends: streams end in `preClose` (the proxy's own hook),
 * then this plugin ends every client socket left without a request, so `close()` never waits on a
 * connection that will not send anything. Signals stay with the CLI.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ConnectionTracker } from '../lib/connections.ts'

/** How long an idle client socket may still deliver a request (answered 503) before it is ended. */
const IDLE_GRACE_MS = 200

async function mcpShutdown (fastify: FastifyInstance): Promise<void> {
  const tracker = new ConnectionTracker(fastify.server)
  fastify.addHook('preClose', async () => {
    await tracker.closeIdle(IDLE_GRACE_MS)
  })
}

export default fp(mcpShutdown, {
  name: 'mcp-gateway-shutdown',
  fastify: '5.x',
  dependencies: ['mcp-gateway-proxy']
})
