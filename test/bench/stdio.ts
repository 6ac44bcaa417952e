/**
 * The stdio path: tools/call through the gateway, supergateway and mcp-proxy, each wrapping the
 * same stdio server (the demo server, one child per session), side by side in interleaved rounds.
 * CPU per call is the proxy process's own (its stdio child excluded), read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { McpLoadClient, median, type LoadResult } from './load.ts'

const STDIO_SERVER = fileURLToPath(new URL('../../examples/stdio-server/server.js', import.meta.url))
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const TICK_US = 10_000

interface Target {
  name: string
  url: string
  child: ChildProcess
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** User plus system CPU of one process (not its children), in microseconds. */
function cpuOf (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_US
}

async function ready (url: string, child: ChildProcess): Promise<void> {
  const until = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: exited with ${child.exitCode}`)
    try {
      const client = new McpLoadClient(url, 1)
      await client.initialize()
      await client.close()
      return
    } catch (err) {
      if (Date.now() > until) throw err
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

async function startTargets (servers: string): Promise<Target[]> {
  const command = `${process.execPath} ${STDIO_SERVER}`
  const gateway = spawn(process.execPath, [servers, 'gateway-stdio', STDIO_SERVER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [message] = await once(gateway, 'message') as [{ url: string }]
  const sgPort = await freePort()
  const supergateway = spawn(process.execPath, [`${ROOT}node_modules/supergateway/dist/index.js`, '--stdio', command, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(sgPort), '--logLevel', 'none'], { stdio: 'ignore' })
  const mpPort = await freePort()
  const mcpProxy = spawn(process.execPath, [`${ROOT}node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs`, '--port', String(mpPort), '--host', '127.0.0.1', '--server', 'stream', '--', process.execPath, STDIO_SERVER], { stdio: 'ignore' })
  const targets = [
    { name: 'gateway', url: message.url, child: gateway },
    { name: 'supergateway', url: `http://127.0.0.1:${sgPort}/mcp`, child: supergateway },
    { name: 'mcp-proxy', url: `http://127.0.0.1:${mpPort}/mcp`, child: mcpProxy }
  ]
  for (const target of targets) await ready(target.url, target.child)
  return targets
}

interface Sample extends LoadResult {
  cpuPerCall: number
}

async function measure (target: Target, concurrency: number, requests: number): Promise<Sample> {
  const client = new McpLoadClient(target.url, concurrency)
  await client.initialize()
  await client.run(200, concurrency)
  const before = cpuOf(target.child.pid as number)
  const result = await client.run(requests, concurrency)
  const after = cpuOf(target.child.pid as number)
  await client.close()
  return { ...result, cpuPerCall: (after - before) / requests }
}

export async function benchStdio (servers: string, rounds: number, requests: number): Promise<void> {
  const targets = await startTargets(servers)
  process.stdout.write(`\n## tools/call over a stdio upstream (${rounds} interleaved rounds x ${requests} calls, medians; one session, one child)\n\n`)
  for (const concurrency of [1, 32]) {
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
    for (let round = 0; round < rounds; round++) {
      for (const target of targets) samples.get(target.name)?.push(await measure(target, concurrency, requests))
    }
    const stat = (name: string, key: keyof Sample): number => median((samples.get(name) ?? []).map((s) => s[key]))
    process.stdout.write(`concurrency ${concurrency}\n| target | calls/s | p50 ms | p99 ms | CPU µs/call (proxy process) | errors |\n|---|---|---|---|---|---|\n`)
    for (const target of targets) {
      const errors = (samples.get(target.name) ?? []).reduce((sum, s) => sum + s.errors, 0)
      process.stdout.write(`| ${target.name} | ${stat(target.name, 'throughput').toFixed(0)} | ${stat(target.name, 'p50').toFixed(2)} | ${stat(target.name, 'p99').toFixed(2)} | ${stat(target.name, 'cpuPerCall').toFixed(0)} | ${errors} |\n`)
    }
    const gw = stat('gateway', 'throughput')
    process.stdout.write(`ratios: gateway/supergateway throughput ${(gw / stat('supergateway', 'throughput')).toFixed(2)}x, ` +
      `gateway/mcp-proxy throughput ${(gw / stat('mcp-proxy', 'throughput')).toFixed(2)}x, ` +
      `gateway/supergateway CPU per call ${(stat('gateway', 'cpuPerCall') / stat('supergateway', 'cpuPerCall')).toFixed(2)}x, ` +
      `gateway/mcp-proxy CPU per call ${(stat('gateway', 'cpuPerCall') / stat('mcp-proxy', 'cpuPerCall')).toFixed(2)}x\n\n`)
  }
  for (const target of targets) {
    target.child.kill('SIGTERM')
    if (target.child.exitCode === null) await once(target.child, 'exit')
  }
}
