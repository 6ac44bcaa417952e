/**
 * Interceptors, the three ways, on one gateway in front of the demo upstream:
 *
 *   npm run build && node dist/examples/interceptors/app.js
 *
 * 1. rules (what a config file says): hide every tool but echo, add and weather; mock weather;
 * 2. programmatic, from any plugin: `fastify.mcpInterceptors.add(...)` redacts e-mail addresses
 *    in tool results;
 * 3. route level: an interceptor of the MCP route only (no sums over 1000), and a route
 *    `preHandler` that sees the parsed messages and answers `tools/call` of `whoami` itself.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import mcpGateway from '../../plugins/index.ts'
import type { JsonRpcMessage, JsonRpcRequest } from '../../lib/jsonrpc.ts'
import { startDemoUpstream } from '../demo-upstream/server.ts'

const redactEmails = fp(async (fastify: FastifyInstance) => {
  fastify.mcpInterceptors.add({
    name: 'redact-emails',
    match: { direction: 'upstream_to_client', kind: 'response', method: 'tools/call' },
    handler: (message) => {
      const text = JSON.stringify(message)
      const redacted = text.replace(/[\w.+-]+@[\w-]+\.[\w.]+/g, '[email]')
      return redacted === text ? undefined : { action: 'modify', message: JSON.parse(redacted) as JsonRpcMessage }
    }
  })
}, { name: 'redact-emails', dependencies: ['mcp-gateway'] })

export async function buildApp (upstreamUrl: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn' } })
  await app.register(mcpGateway, {
    upstream: upstreamUrl,
    interceptors: {
      rules: [
        { mock: { tool: 'weather', result: { content: [{ type: 'text', text: 'sunny' }] } } },
        { allowTools: ['echo', 'add', 'weather', 'whoami'] }
      ]
    },
    route: {
      interceptors: [{
        name: 'small-sums',
        match: { direction: 'client_to_upstream', tool: 'add' },
        handler: (message) => {
          const args = (message as JsonRpcRequest).params?.arguments as { a?: number, b?: number } | undefined
          return (args?.a ?? 0) + (args?.b ?? 0) > 1000 ? { action: 'block', reason: 'sums over 1000 are not allowed' } : undefined
        }
      }],
      preHandler: async (request, reply) => {
        const first = request.mcpMessages?.[0] as JsonRpcRequest | undefined
        if (first?.method === 'tools/call' && first.params?.name === 'whoami') {
          return reply.send({ jsonrpc: '2.0', id: first.id, result: { content: [{ type: 'text', text: `session ${request.mcpSession?.id ?? 'none'}` }] } })
        }
      }
    }
  })
  await app.register(redactEmails)
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const upstream = await startDemoUpstream()
  const app = await buildApp(upstream.url)
  const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
  process.stdout.write(`MCP gateway with interceptors at ${address}/mcp\n`)
}
