/** The bundled server preset: a Fastify instance with the gateway registered, from one config. */
import { readFile } from 'node:fs/promises'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { invalid } from '../../lib/options.ts'
import mcpGateway from '../../plugins/index.ts'
import { checkGatewayConfig, shutdownPlan, type GatewayConfig } from './config.ts'

export type { GatewayConfig, StoreConfig } from './config.ts'

/** Builds (does not start) a gateway server. Call `listen({ host: config.host, port: config.port })`. */
export async function createGateway (config: GatewayConfig): Promise<FastifyInstance> {
  const checked = checkGatewayConfig(config)
  const { host: _host, port: _port, logLevel, http2, tls, headersTimeoutMs, requestTimeoutMs, shutdownTimeoutMs: _shutdown, ...plugin } = checked
  const options: FastifyServerOptions = {
    logger: logLevel === false ? false : { level: logLevel as string },
    // Fastify cuts every close hook (the drains among them) at pluginTimeout: it must hold the
    // whole shutdown budget, or close() fails before the CLI's own deadline.
    pluginTimeout: shutdownPlan(checked).pluginTimeoutMs,
    // Slow-loris: a client that trickles its request in is cut off (Node answers 408).
    requestTimeout: requestTimeoutMs,
    // The MCP endpoint sets its own limit; this one covers any other route.
    bodyLimit: plugin.bodyLimit ?? 4 * 1024 * 1024
  }
  let secure: { key: Buffer, cert: Buffer } | undefined
  if (tls !== undefined) {
    try {
      secure = { key: await readFile(tls.key), cert: await readFile(tls.cert) }
    } catch (err) {
      throw invalid('tls', `cannot read the key or certificate: ${(err as Error).message}`)
    }
  }
  // Fastify's types pick the server type from literal options; every kind is used the same way here.
  const build = Fastify as unknown as (options: FastifyServerOptions & { http2?: boolean, https?: object }) => FastifyInstance
  const app = build({
    ...options,
    ...(http2 === true ? { http2: true } : {}),
    ...(secure === undefined ? {} : { https: http2 === true ? { ...secure, allowHTTP1: true } : secure })
  })
  const server = app.server as { headersTimeout?: number, connectionsCheckingInterval?: number }
  server.headersTimeout = headersTimeoutMs
  // Node checks those timeouts every 30 s by default: a second keeps them close to what is set.
  server.connectionsCheckingInterval = Math.min(1000, headersTimeoutMs as number)
  await app.register(mcpGateway, plugin)
  return app
}
