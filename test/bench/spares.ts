/**
 * `BENCH_ONLY=spares`: how long `initialize` takes through the gateway to a stdio upstream (the
 * demo server, one child per session), with a warm spare child waiting and without one (the
 * child started by the initialize), interleaved rounds, medians. Each session is deleted after
 * its initialize, and each spare round waits for its spare first: the steady state of sessions
 * arriving slower than a child starts.
 */
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import mcpGateway from '../../plugins/index.ts'
import { median } from './load.ts'

const STDIO_SERVER = fileURLToPath(new URL('../../examples/stdio-server/server.js', import.meta.url))
const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } })
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

interface Target { name: string, spares: number, app: FastifyInstance, url: string, samples: number[] }

async function start (name: string, spares: number): Promise<Target> {
  const app = Fastify({ logger: false })
  await app.register(mcpGateway, { upstream: { kind: 'stdio', name: 'demo', command: process.execPath, args: [STDIO_SERVER], spares }, metrics: false, health: false })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  return { name, spares, app, url: `${base}/mcp`, samples: [] }
}

/** Until the upstream holds `spares` waiting children (bounded: 10 s). */
async function sparesReady (target: Target): Promise<void> {
  const until = Date.now() + 10_000
  while ((target.app.mcpUpstreams.get('demo')?.children?.()?.spares ?? 0) < target.spares) {
    if (Date.now() > until) throw new Error(`${target.name}: no spare after 10 s`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function once (target: Target): Promise<void> {
  await sparesReady(target)
  const started = performance.now()
  const res = await fetch(target.url, { method: 'POST', headers: HEADERS, body: INITIALIZE })
  await res.text()
  target.samples.push(performance.now() - started)
  const id = res.headers.get('mcp-session-id')
  if (res.status !== 200 || id === null) throw new Error(`${target.name}: initialize answered ${res.status}`)
  await (await fetch(target.url, { method: 'DELETE', headers: { 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' } })).text()
}

export async function benchSpares (rounds: number): Promise<void> {
  const targets = [await start('no spares', 0), await start('spares: 1', 1)]
  // One unmeasured session each: the server's files are in the page cache for both.
  for (const target of targets) { await once(target); target.samples = [] }
  for (let round = 0; round < rounds * 5; round++) for (const target of targets) await once(target)
  console.log('\nstdio initialize latency (ms, median of %d), gateway in front of the demo server:', targets[0]?.samples.length)
  const cold = median(targets[0]?.samples ?? [])
  for (const target of targets) {
    const value = median(target.samples)
    console.log(`  ${target.name.padEnd(10)} ${value.toFixed(1).padStart(7)} ms   ${(value / cold).toFixed(2)}x`)
  }
  for (const target of targets) await target.app.close()
}
