/**
 * `npm run bench`: tools/call through the gateway, through a plain @fastify/http-proxy forwarder,
 * and direct to the same upstream, side by side in one run, for both upstream response modes.
 * Targets are measured in interleaved rounds (this machine is shared and noisy) and medians are
 * reported, with each proxy's CPU time per forwarded call.
 *
 * Then the stream benchmarks (replay of 10,000 events, memory per idle SSE stream), 1 MiB results
 * and a 10,000-notification stream (payload.ts, the independent harness's two heavy scenarios).
 *
 * Options (env): BENCH_ROUNDS (default 5), BENCH_REQUESTS (per round and concurrency, default 2000),
 * BENCH_ONLY (`calls`, `streams`, `payload`, `stdio`, `ws`, `federation` (federation.ts), `policy` (policy.ts), `audit` (audit.ts), `identity` (identity.ts), `spares` (spares.ts: stdio initialize with and without a warm child), `redis` (memory stores vs Redis only) or `input`: input bounds, in process, see input-bounds.ts),
 * BENCH_CORES: `own` (default: no pinning, each server may get a core of its own) or `shared`, the
 * arrangement of ../shared/bench: the load generator on core 0, the upstream and the proxy under
 * test together on core 1, so a proxy's CPU comes out of the upstream's throughput.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { McpLoadClient, median, type LoadResult } from './load.ts'
import { benchIdleStreams, benchReplay } from './streams.ts'
import { benchPayloads } from './payload.ts'
import { benchStdio } from './stdio.ts'
import { benchSpares } from './spares.ts'
import { benchWebSocket } from './websocket.ts'
import { benchInputBounds } from './input-bounds.ts'
import { benchFederation } from './federation.ts'
import { benchPolicy } from './policy.ts'
import { benchAudit } from './audit.ts'
import { benchIdentity } from './identity.ts'
import { redisMissing } from '../helpers/redis.ts'

/** Why the Redis-store gateway is left out, or undefined when Redis answers. */
const REDIS = await redisMissing()
const SERVERS = fileURLToPath(new URL('./servers.js', import.meta.url))
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000)
const CONCURRENCIES = [1, 32]
const SHARED_CORES = process.env.BENCH_CORES === 'shared'
if (SHARED_CORES) execFileSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' })

interface Server {
  child: ChildProcess
  url: string
}

async function startServer (kind: string, target?: string): Promise<Server> {
  const child = fork(SERVERS, target === undefined ? [kind] : [kind, target], { stdio: 'inherit' })
  // Every thread of it, before it serves: the upstream and the proxies share core 1.
  if (SHARED_CORES && child.pid !== undefined) execFileSync('taskset', ['-a', '-cp', '1', String(child.pid)], { stdio: 'ignore' })
  const [message] = await once(child, 'message') as [{ url: string }]
  return { child, url: message.url }
}

async function cpuOf (server: Server): Promise<number> {
  server.child.send('cpu')
  const [message] = await once(server.child, 'message') as [{ cpu: number }]
  return message.cpu
}

interface Sample extends LoadResult {
  /** CPU microseconds the measured process spent per call. */
  cpuPerCall: number
  /** CPU microseconds the upstream spent per call (behind this target). */
  upstreamCpuPerCall: number
}

async function measure (target: string, cpuProcess: Server, upstream: Server, concurrency: number): Promise<Sample> {
  const client = new McpLoadClient(target, concurrency)
  await client.initialize()
  await client.run(200, concurrency)
  const [before, upstreamBefore] = [await cpuOf(cpuProcess), await cpuOf(upstream)]
  const result = await client.run(REQUESTS, concurrency)
  const [after, upstreamAfter] = [await cpuOf(cpuProcess), await cpuOf(upstream)]
  await client.close()
  // Direct: the measured process is the upstream; its CPU is counted once, as the proxy's column.
  return { ...result, cpuPerCall: (after - before) / REQUESTS, upstreamCpuPerCall: (upstreamAfter - upstreamBefore) / REQUESTS }
}

function fmt (value: number, digits = 2): string {
  return value.toFixed(digits)
}

async function benchMode (mode: 'upstream' | 'upstream-json'): Promise<void> {
  const upstream = await startServer(mode)
  const gateway = await startServer('gateway', upstream.url)
  const bare = await startServer('gateway-bare', upstream.url)
  const forwarder = await startServer('forwarder', upstream.url)
  const redis = REDIS === undefined ? await startServer('gateway-redis', upstream.url) : undefined
  const intercepting = await startServer('gateway-interceptors', upstream.url)
  const targets = [
    { name: 'direct', url: upstream.url, cpu: upstream },
    { name: 'http-proxy', url: forwarder.url, cpu: forwarder },
    { name: 'gateway', url: gateway.url, cpu: gateway },
    { name: 'gateway-no-metrics', url: bare.url, cpu: bare },
    ...(redis === undefined ? [] : [{ name: 'gateway-redis', url: redis.url, cpu: redis }]),
    { name: 'gateway-3-interceptors', url: intercepting.url, cpu: intercepting }
  ]
  const label = mode === 'upstream' ? 'upstream answers with SSE' : 'upstream answers with JSON'
  const cores = SHARED_CORES ? 'load on core 0, upstream and proxy sharing core 1' : 'no core pinning'
  process.stdout.write(`\n## tools/call, ${label} (${ROUNDS} interleaved rounds x ${REQUESTS} calls, medians; ${cores})\n\n`)
  for (const concurrency of CONCURRENCIES) {
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) {
        samples.get(target.name)?.push(await measure(target.url, target.cpu, upstream, concurrency))
      }
    }
    const stat = (name: string, key: keyof Sample): number => median((samples.get(name) ?? []).map((s) => s[key]))
    process.stdout.write(`concurrency ${concurrency}\n`)
    process.stdout.write('| target | calls/s | p50 ms | p99 ms | CPU µs/call (that process) | upstream CPU µs/call | errors |\n|---|---|---|---|---|---|---|\n')
    for (const target of targets) {
      const errors = (samples.get(target.name) ?? []).reduce((sum, s) => sum + s.errors, 0)
      process.stdout.write(`| ${target.name} | ${fmt(stat(target.name, 'throughput'), 0)} | ${fmt(stat(target.name, 'p50'))} | ${fmt(stat(target.name, 'p99'))} | ${fmt(stat(target.name, 'cpuPerCall'), 0)} | ${fmt(stat(target.name, 'upstreamCpuPerCall'), 0)} | ${errors} |\n`)
    }
    const gw = stat('gateway', 'throughput')
    process.stdout.write(`ratios: gateway/http-proxy throughput ${fmt(gw / stat('http-proxy', 'throughput'))}x, ` +
      `gateway/direct throughput ${fmt(gw / stat('direct', 'throughput'))}x, ` +
      `gateway/http-proxy CPU per call ${fmt(stat('gateway', 'cpuPerCall') / stat('http-proxy', 'cpuPerCall'))}x, ` +
      `upstream CPU per call behind gateway/behind http-proxy ${fmt(stat('gateway', 'upstreamCpuPerCall') / stat('http-proxy', 'upstreamCpuPerCall'))}x, ` +
      `gateway p50 added over direct ${fmt(stat('gateway', 'p50') - stat('direct', 'p50'), 3)} ms, ` +
      `metrics cost ${fmt(stat('gateway', 'cpuPerCall') - stat('gateway-no-metrics', 'cpuPerCall'), 0)} µs CPU per call\n`)
    process.stdout.write(`Three trivial interceptors vs none: throughput ${fmt(stat('gateway-3-interceptors', 'throughput') / gw)}x, ` +
      `CPU per call ${fmt(stat('gateway-3-interceptors', 'cpuPerCall') / stat('gateway', 'cpuPerCall'))}x\n`)
    process.stdout.write(redis === undefined
      ? `Redis stores not measured: ${REDIS as string}\n\n`
      : `Redis stores vs memory stores: throughput ${fmt(stat('gateway-redis', 'throughput') / gw)}x, ` +
        `gateway CPU per call ${fmt(stat('gateway-redis', 'cpuPerCall') / stat('gateway', 'cpuPerCall'))}x (Redis's own CPU not included)\n\n`)
  }
  for (const server of [gateway, bare, forwarder, upstream, intercepting, ...(redis === undefined ? [] : [redis])]) {
    server.child.send('exit')
    await once(server.child, 'exit')
  }
}

/**
 * `BENCH_ONLY=redis`: the same gateway on the memory stores and on Redis, nothing else, so more
 * rounds fit: what the shared session store and event log cost an SSE answer.
 */
async function benchRedis (): Promise<void> {
  if (REDIS !== undefined) {
    process.stdout.write(`Redis stores not measured: ${REDIS}\n`)
    return
  }
  const upstream = await startServer('upstream')
  const memory = await startServer('gateway', upstream.url)
  const redis = await startServer('gateway-redis', upstream.url)
  const targets = [{ name: 'gateway', server: memory }, { name: 'gateway-redis', server: redis }]
  process.stdout.write(`\n## tools/call answered with SSE, memory stores vs Redis (${ROUNDS * 2} interleaved rounds x ${REQUESTS} calls, medians)\n\n`)
  for (const concurrency of CONCURRENCIES) {
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
    for (let round = 0; round < ROUNDS * 2; round++) {
      for (const target of targets) samples.get(target.name)?.push(await measure(target.server.url, target.server, upstream, concurrency))
    }
    const stat = (name: string, key: keyof Sample): number => median((samples.get(name) ?? []).map((s) => s[key]))
    process.stdout.write(`concurrency ${concurrency}: memory ${fmt(stat('gateway', 'throughput'), 0)} calls/s (${fmt(stat('gateway', 'cpuPerCall'), 0)} µs CPU/call), ` +
      `redis ${fmt(stat('gateway-redis', 'throughput'), 0)} calls/s (${fmt(stat('gateway-redis', 'cpuPerCall'), 0)} µs CPU/call): ` +
      `throughput ${fmt(stat('gateway-redis', 'throughput') / stat('gateway', 'throughput'))}x, CPU per call ${fmt(stat('gateway-redis', 'cpuPerCall') / stat('gateway', 'cpuPerCall'))}x\n`)
  }
  for (const server of [memory, redis, upstream]) {
    server.child.send('exit')
    await once(server.child, 'exit')
  }
}

async function benchStreams (): Promise<void> {
  const upstream = await startServer('upstream')
  const gateway = await startServer('gateway', upstream.url)
  await benchReplay(gateway)
  await benchIdleStreams(gateway)
  for (const server of [gateway, upstream]) {
    server.child.send('exit')
    await once(server.child, 'exit')
  }
}

async function benchHeavy (): Promise<void> {
  const upstream = await startServer('upstream')
  const forwarder = await startServer('forwarder', upstream.url)
  const gateway = await startServer('gateway', upstream.url)
  await benchPayloads([
    { name: 'direct', server: upstream },
    { name: 'http-proxy', server: forwarder },
    { name: 'gateway', server: gateway }
  ], Math.min(ROUNDS, 3))
  for (const server of [gateway, forwarder, upstream]) {
    server.child.send('exit')
    await once(server.child, 'exit')
  }
}

const only = process.env.BENCH_ONLY
if (only === undefined || only === 'calls') {
  await benchMode('upstream')
  await benchMode('upstream-json')
}
if (only === 'redis') await benchRedis()
if (only === undefined || only === 'streams') await benchStreams()
if (only === undefined || only === 'payload') await benchHeavy()
if (only === undefined || only === 'stdio') await benchStdio(SERVERS, ROUNDS, REQUESTS)
if (only === undefined || only === 'ws') await benchWebSocket(SERVERS, ROUNDS, REQUESTS)
if (only === undefined || only === 'federation') await benchFederation(SERVERS, ROUNDS, REQUESTS)
if (only === undefined || only === 'policy') await benchPolicy(SERVERS, ROUNDS, REQUESTS)
if (only === undefined || only === 'audit') await benchAudit(SERVERS, ROUNDS, REQUESTS)
if (only === undefined || only === 'identity') await benchIdentity(SERVERS, ROUNDS, REQUESTS)
if (only === undefined || only === 'spares') await benchSpares(ROUNDS)
if (only === undefined || only === 'input') benchInputBounds()
