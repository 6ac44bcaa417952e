#!/usr/bin/env node
/**
 * fastify-mcp-gateway CLI: a thin shell over `createGateway` that reads flags, environment and a
 * config file, and owns the process signals (the plugins never touch them).
 *
 * Precedence: flags, then environment, then the config file, then defaults.
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { killStdioChildren } from '../../lib/upstream/stdio.ts'
import type { DemoUpstream } from '../demo-upstream/server.ts'
import { checkGatewayConfig, expandEnvironment, readConfigFile, shutdownPlan } from './config.ts'
import { createGateway, type GatewayConfig } from './create-gateway.ts'
import { policyCommand } from './policy-command.ts'
import { auditCommand } from './audit-command.ts'
import { tapeCommand } from './tape-command.ts'

const USAGE = `Usage: fastify-mcp-gateway [options]
       fastify-mcp-gateway policy test --config FILE --request JSON [--principal JSON]
       fastify-mcp-gateway audit verify FILE... [--head SEQ:HASH]
       fastify-mcp-gateway tape replay FILE [--port N] [--speed X] | tape diff A B

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

/**
 * The demo server is loaded only for `--demo`: it needs the MCP SDK and zod, which the gateway
 * itself does not depend on.
 */
async function startDemo (): Promise<DemoUpstream> {
  let demo: typeof import('../demo-upstream/server.ts')
  try {
    demo = await import('../demo-upstream/server.ts')
  } catch (err) {
    const missing = /Cannot find (?:package|module) '(@modelcontextprotocol\/sdk|zod)/.exec((err as Error).message)
    if (missing === null) throw err
    throw new Error(`--demo runs the bundled demo MCP server, which needs ${missing[1] as string} (not installed with the gateway): npm install @modelcontextprotocol/sdk zod`)
  }
  return await demo.startDemoUpstream()
}

function listenFailure (err: unknown, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code
  const why = code === 'EADDRINUSE'
    ? 'the address is already in use (another process listens there): stop it, or choose another --port'
    : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges): choose another --port' : (err as Error).message
  return new Error(`cannot listen on ${host}:${port}: ${why}`)
}

/** After a failed start: close what was opened (Redis, children, the demo), bounded in time. */
async function closeAfterFailedStart (app: FastifyInstance, demo: DemoUpstream | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms).unref() })
  const closing = Promise.all([app.close(), demo?.close()]).then(() => {}, (err: unknown) => {
    process.stderr.write(`fastify-mcp-gateway: closing after the failed start: ${(err as Error).message}\n`)
  })
  await Promise.race([closing, deadline])
  clearTimeout(timer)
}

export async function main (argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (argv[0] === 'policy') {
    process.exitCode = await policyCommand(argv.slice(1), process.stdout)
    return
  }
  if (argv[0] === 'audit') {
    process.exitCode = await auditCommand(argv.slice(1), process.stdout)
    return
  }
  if (argv[0] === 'tape') {
    process.exitCode = await tapeCommand(argv.slice(1), process.stdout)
    return
  }
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
    demo = await startDemo()
    config.upstream = { name: 'demo', url: demo.url }
    demoGovernance(config)
  }

  // Last resort, however the process ends: no stdio child outlives it.
  process.once('exit', () => { killStdioChildren() })
  let app: FastifyInstance
  let plan: ReturnType<typeof shutdownPlan>
  try {
    plan = shutdownPlan(checkGatewayConfig(config))
    app = await createGateway(config as unknown as GatewayConfig)
  } catch (err) {
    await demo?.close()
    throw err
  }
  const listenHost = config.host as string | undefined ?? '127.0.0.1'
  const listenPort = config.port as number | undefined ?? 3000
  let address: string
  try {
    address = await app.listen({ host: listenHost, port: listenPort })
  } catch (err) {
    await closeAfterFailedStart(app, demo, plan.forcedExitMs)
    throw listenFailure(err, listenHost, listenPort)
  }
  const running = app
  // One budget from the signal to the exit (see shutdownTimeoutMs): Fastify refuses new requests
  // and drains, ends streams and closes upstreams; stdio children still running near the end are
  // SIGKILLed so the close completes and the exit is 0; past the budget, exit 1.
  closeWithGrace({
    delay: plan.forcedExitMs,
    onTimeout: (delay) => {
      killStdioChildren()
      process.stderr.write(`fastify-mcp-gateway: shutdown did not finish within ${delay} ms (shutdownTimeoutMs): exiting with code 1\n`)
    }
  }, async ({ signal, err }) => {
    if (err !== undefined) running.log.error({ err }, 'shutting down after an error')
    else running.log.info({ signal, shutdownTimeoutMs: plan.forcedExitMs }, 'shutting down')
    const killer = setTimeout(() => {
      const killed = killStdioChildren()
      if (killed > 0) running.log.warn({ killed }, 'stdio upstreams still running at the end of the shutdown budget: killed')
    }, plan.killChildrenAtMs).unref()
    try {
      await running.close()
    } finally {
      clearTimeout(killer)
    }
    await demo?.close()
  })
  const upstreams = config.upstreams as Array<{ name: string, path?: string }> | undefined
  if (upstreams === undefined) {
    const endpoint = `${address}${(config.path as string | undefined) ?? '/mcp'}`
    const target = demo === undefined ? 'your upstream' : `the bundled demo server at ${demo.url}`
    process.stdout.write(`\nMCP gateway ready: connect your MCP client to ${endpoint}\n(proxying to ${target})\n${consoleLine(config, address)}\n`)
  } else {
    const lines = upstreams.map((entry) => `connect your MCP client to ${address}${entry.path ?? `/mcp/${entry.name}`} (upstream ${entry.name})`)
    process.stdout.write(`\nMCP gateway ready:\n${lines.join('\n')}\n\n`)
  }
}

/**
 * The demo shows governance too: the admin console, with a key made for this run (printed, never
 * stored), and a rule that holds big sums for approval there.
 */
function demoGovernance (config: Record<string, unknown>): void {
  if (config.admin === undefined) config.admin = { apiKeys: [{ name: 'demo-admin', key: randomBytes(18).toString('base64url') }] }
  if (config.policy === undefined) {
    config.policy = { rules: [{ name: 'big-sums-need-approval', effect: 'approve', when: 'tool.name == "add" && arguments.?a.orValue(0.0) > 1000.0', timeoutMs: 120_000 }] }
  }
}

/** Where the admin console is, and (for the demo's own key) the key. */
function consoleLine (config: Record<string, unknown>, address: string): string {
  const admin = config.admin as { path?: string, console?: boolean, apiKeys?: Array<{ name: string, key: string }> } | undefined
  if (admin === undefined || admin.console === false) return ''
  const demoKey = admin.apiKeys?.find((entry) => entry.name === 'demo-admin')?.key
  return `admin console: ${address}${admin.path ?? '/admin'}/${demoKey === undefined ? '' : ` (admin key for this run: ${demoKey})`}\n`
}

main(process.argv.slice(2), process.env).catch((err: unknown) => {
  process.stderr.write(`fastify-mcp-gateway: ${(err as Error).message}\n`)
  // Whatever a failed start left open (a Redis client retrying, a timer) must not keep it alive.
  process.exit(1)
})
