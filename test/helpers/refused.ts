/** Registers the umbrella plugin with `options`: "accepted", or the message it was refused with. */
import Fastify from 'fastify'
import mcpGateway, { type McpGatewayOptions } from '../../plugins/index.ts'

export async function refused (options: unknown): Promise<string> {
  const app = Fastify({ logger: false })
  try {
    await app.register(mcpGateway, options as McpGatewayOptions)
    await app.ready()
    return 'accepted'
  } catch (err) {
    return (err as Error).message
  } finally {
    await app.close()
  }
}
