/** The bundled server preset: a Fastify instance with the gateway registered, from one config. */
import Fastify, { type FastifyInstance } from 'fastify'
import mcpGateway from '../../plugins/index.ts'
import { checkGatewayConfig, type GatewayConfig } from './config.ts'

export type { GatewayConfig, StoreConfig } from './config.ts'

/** Builds (does not start) a gateway server. Call `listen({ host: config.host, port: config.port })`. */
export async function createGateway (config: GatewayConfig): Promise<FastifyInstance> {
  const checked = checkGatewayConfig(config)
  const { host: _host, port: _port, logLevel, ...plugin } = checked
  const app = Fastify({
    logger: logLevel === false ? false : { level: logLevel as string },
    // The MCP endpoint sets its own limit; this one covers any other route.
    bodyLimit: plugin.bodyLimit ?? 4 * 1024 * 1024
  })
  await app.register(mcpGateway, plugin)
  return app
}
