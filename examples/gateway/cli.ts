#!/usr/bin/env node
/**
 * fastify-mcp-gateway CLI: a thin shell over `createGateway` that reads flags, environment and a
 * config file, and owns the process signals (the plugins never touch them).
 *
 * Precedence: flags, then environment, then the config file, then defaults.
 */
import { parseArgs } from 'node:util'
import closeWithGrace from 'close-with-grace'
import { startDemoUpstream, type DemoUpstream } from '../demo-upstream/server.ts'
import { expandEnvironment, readConfigFile } from './config.ts'
import { createGateway, type GatewayConfig } from './create-gateway.ts'

const USAGE = `Usage: fastify-mcp-gateway [options]

  --config FILE      JSON config file (env MCP_GATEWAY_CONFIG)
  --upstream URL     upstream MCP endpoint (env MCP_GATEWAY_UPSTREAM)
  --host HOST        interface to listen on, default 127.0.0.1 (env MCP_GATEWAY_HOST)
  --port N           port to listen on, default 3000 (env MCP_GATEWAY_PORT)
  --path PATH        MCP endpoint path, default /mcp (env MCP_GATEWAY_PATH)
  --log-level LEVEL  pino level or "silent" (env MCP_GATEWAY_LOG_LEVEL)
  --demo             without an upstream, start the bundled demo MCP server and proxy to it
  --help             this text
`

function portNumber (value: string, from: string): number {
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${from}: not a port number: ${value}`)
  return port
}

export async function main (argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      upstream: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      path: { type: 'string' },
      'log-level': { type: 'string' },
      demo: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    },
    strict: true
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return
  }

  const configPath = values.config ?? env.MCP_GATEWAY_CONFIG
  const config: Record<string, unknown> = configPath === undefined ? {} : expandEnvironment(await readConfigFile(configPath), env)
  const upstream = values.upstream ?? env.MCP_GATEWAY_UPSTREAM
  if (upstream !== undefined) config.upstream = upstream
  const host = values.host ?? env.MCP_GATEWAY_HOST
  if (host !== undefined) config.host = host
  const port = values.port ?? env.MCP_GATEWAY_PORT
  if (port !== undefined) config.port = portNumber(port, values.port !== undefined ? '--port' : 'MCP_GATEWAY_PORT')
  const path = values.path ?? env.MCP_GATEWAY_PATH
  if (path !== undefined) config.path = path
  const logLevel = values['log-level'] ?? env.MCP_GATEWAY_LOG_LEVEL
  if (logLevel !== undefined) config.logLevel = logLevel

  let demo: DemoUpstream | undefined
  if (config.upstream === undefined && config.upstreams === undefined) {
    if (!values.demo) throw new Error('no upstream: pass --upstream URL, set it in --config, or use --demo')
    demo = await startDemoUpstream()
    config.upstream = { name: 'demo', url: demo.url }
  }

  const app = await createGateway(config as unknown as GatewayConfig)
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
    await demo?.close()
  })
  const address = await app.listen({ host: config.host as string | undefined ?? '127.0.0.1', port: config.port as number | undefined ?? 3000 })
  const upstreams = config.upstreams as Array<{ name: string, path?: string }> | undefined
  if (upstreams === undefined) {
    const endpoint = `${address}${(config.path as string | undefined) ?? '/mcp'}`
    const target = demo === undefined ? 'your upstream' : `the bundled demo server at ${demo.url}`
    process.stdout.write(`\nMCP gateway ready: connect your MCP client to ${endpoint}\n(proxying to ${target})\n\n`)
  } else {
    const lines = upstreams.map((entry) => `connect your MCP client to ${address}${entry.path ?? `/mcp/${entry.name}`} (upstream ${entry.name})`)
    process.stdout.write(`\nMCP gateway ready:\n${lines.join('\n')}\n\n`)
  }
}

main(process.argv.slice(2), process.env).catch((err: unknown) => {
  process.stderr.write(`fastify-mcp-gateway: ${(err as Error).message}\n`)
  process.exitCode = 1
})
