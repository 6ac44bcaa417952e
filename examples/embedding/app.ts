/**
 * Registering the gateway inside an existing Fastify app that keeps serving its own routes.
 *
 *   node dist/examples/embedding/app.js http://127.0.0.1:4000/mcp
 *
 * The app's own JSON parser, error handler and routes are untouched: the MCP endpoint lives in an
 * encapsulated context of its own.
 */
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import mcpGateway from '../../plugins/index.ts'

export async function buildApp (upstreamUrl: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn' } })

  // The app's own routes, with Fastify's default JSON handling.
  app.get('/api/hello', async () => ({ hello: 'world' }))
  app.post('/api/echo', async (request) => ({ youSent: request.body }))

  await app.register(mcpGateway, {
    upstream: { name: 'tools', url: upstreamUrl },
    path: '/mcp'
  })

  // Decorators of the gateway are there for the app to use.
  app.get('/api/mcp-sessions', async () => ({ live: await app.mcpSessions.count() }))
  return app
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const upstream = process.argv[2] ?? 'http://127.0.0.1:4000/mcp'
  const app = await buildApp(upstream)
  const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3001) })
  process.stdout.write(`app with MCP gateway at ${address}/mcp (upstream ${upstream})\n`)
}
