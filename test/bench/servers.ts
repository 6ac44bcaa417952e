/**
 * One benchmark server per process, so each one's CPU time is its own: the demo upstream, the
 * gateway, or a plain @fastify/http-proxy forwarder. Started by run.ts with fork(); reports its
 * URL, then answers `cpu` messages with its CPU time in microseconds.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { z } from 'zod'
import httpProxy from '@fastify/http-proxy'
import { startDemoUpstream } from '../../examples/demo-upstream/server.ts'
import { Redis } from 'ioredis'
import { createGateway } from '../../examples/gateway/create-gateway.ts'
import { REDIS_URL, deleteKeys } from '../helpers/redis.ts'
import { startFederationGateway, startFederationUpstreams, startSlowUpstream } from './federation-servers.ts'
import { BENCH_POLICY } from './policy-rules.ts'

type Kind = 'upstreams-federation' | 'upstream-federation-slow' | 'gateway-federation' | 'upstream' | 'upstream-json' | 'gateway' | 'gateway-bare' | 'gateway-redis' | 'gateway-interceptors' | 'gateway-policy' | 'gateway-audit' | 'gateway-jwt' | 'gateway-exchange' | 'gateway-stdio' | 'gateway-ws' | 'forwarder'

/** The audit bench's files, removed at exit. */
let auditDir: string | undefined

async function start (kind: Kind, target: string | undefined): Promise<string> {
  if (kind === 'upstreams-federation') return JSON.stringify(await startFederationUpstreams())
  if (kind === 'upstream-federation-slow') return await startSlowUpstream()
  if (kind === 'gateway-federation') return await startFederationGateway(JSON.parse(target as string) as string[])
  if (kind === 'upstream' || kind === 'upstream-json') {
    const up = await startDemoUpstream({
      jsonResponse: kind === 'upstream-json',
      recordRequests: false,
      // For the replay benchmark: many notifications on one POST stream, as fast as possible.
      extraTools: (server) => {
        server.registerTool('flood', { inputSchema: { count: z.number().int() } }, async ({ count }, extra) => {
          const progressToken = extra._meta?.progressToken ?? 'flood'
          for (let progress = 1; progress <= count; progress++) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: count } })
          }
          return { content: [{ type: 'text', text: 'flooded' }] }
        })
        // For the 1 MiB results benchmark (the independent harness's `payload` scenario).
        server.registerTool('payload', { inputSchema: { kib: z.number().int().min(1).max(16 * 1024) } }, async ({ kib }) => {
          return { content: [{ type: 'text', text: 'x'.repeat(kib * 1024) }] }
        })
      }
    })
    return up.url
  }
  if (target === undefined) throw new Error('target URL required')
  if (kind === 'gateway-stdio') {
    // `target` is the stdio server's script: one child per session, as the gateway runs by default.
    const app = await createGateway({ upstream: { kind: 'stdio', name: 'bench', command: process.execPath, args: [target] }, logLevel: false })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    return `${address}/mcp`
  }
  if (kind === 'gateway-ws') {
    const app = await createGateway({ upstream: target, logLevel: false, websocket: true })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    return `${address}/mcp`
  }
  if (kind === 'gateway-audit') {
    auditDir = await mkdtemp(join(tmpdir(), 'bench-audit-'))
    const app = await createGateway({ upstream: target, logLevel: false, audit: { file: { path: join(auditDir, 'audit.jsonl'), maxBytes: 64 * 1024 * 1024 }, ...(process.env.BENCH_AUDIT_FLUSH_MS === undefined ? {} : { flushMs: Number(process.env.BENCH_AUDIT_FLUSH_MS) }) } })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    return `${address}/mcp`
  }
  if (kind === 'gateway-jwt' || kind === 'gateway-exchange') {
    // The identity bench: the same inbound JWT auth; upstream credentials static, or exchanged.
    const spec = JSON.parse(target as string) as { upstream: string, issuer: string, jwks: { keys: Array<Record<string, unknown>> }, tokenUrl: string }
    // Both with the era set (tokenExchange needs it): an explicit `protocol` costs by itself (README, Performance).
    const auth = kind === 'gateway-jwt'
      ? { protocol: '2025' as const, headers: { authorization: 'Bearer static-upstream-token' } }
      : { protocol: '2025' as const, auth: { mode: 'tokenExchange' as const, tokenUrl: spec.tokenUrl, clientId: 'gateway', clientSecret: 'bench-secret' } }
    const app = await createGateway({ upstream: { url: spec.upstream, ...auth }, logLevel: false, auth: { jwt: { jwks: spec.jwks, issuer: spec.issuer, audience: 'https://gateway.bench/mcp' } } })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    return `${address}/mcp`
  }
  if (kind === 'gateway-policy') {
    const app = await createGateway({ upstream: target, logLevel: false, policy: { rules: BENCH_POLICY } })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    return `${address}/mcp`
  }
  if (kind === 'gateway' || kind === 'gateway-bare' || kind === 'gateway-redis' || kind === 'gateway-interceptors') {
    const app = await createGateway({
      upstream: target,
      logLevel: false,
      // "bare": without metrics and health, to show what observability costs.
      ...(kind === 'gateway-bare' ? { metrics: false, health: false } : {}),
      // "redis": sessions and event log in Redis, as a scaled-out deployment runs.
      ...(kind === 'gateway-redis' ? { store: { type: 'redis' as const, url: REDIS_URL, keyPrefix: BENCH_PREFIX } } : {}),
      // "interceptors": three trivial ones on every message, both directions (what the chain costs).
      ...(kind === 'gateway-interceptors'
        ? { interceptors: { interceptors: ['a', 'b', 'c'].map((name) => ({ name, handler: () => undefined })) } }
        : {}),
      // Room for the 10,000-event replay benchmark; keep-alives off so idle streams stay idle.
      streaming: { keepAliveMs: 0, retention: { maxEventsPerStream: 20_000, maxBytesPerSession: 64 * 1024 * 1024 } }
    })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    return `${address}/mcp`
  }
  const url = new URL(target)
  const app = Fastify({ logger: false })
  await app.register(httpProxy, { upstream: url.origin, prefix: '/mcp', rewritePrefix: url.pathname })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  return `${address}/mcp`
}

/** Keys of one run, deleted when it ends. */
const BENCH_PREFIX = `mcp-gw-bench:${process.pid}:`

async function deleteBenchKeys (): Promise<void> {
  const redis = new Redis(REDIS_URL)
  await deleteKeys(redis, BENCH_PREFIX)
  await redis.quit()
}

const [kind, target] = process.argv.slice(2) as [Kind, string | undefined]
const url = await start(kind, target)
// Event-loop delay, for the load test's report.
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
process.on('message', (message: unknown) => {
  if (message === 'stats') {
    process.send?.({ rss: process.memoryUsage.rss(), loopDelayP50: loopDelay.percentile(50) / 1e6, loopDelayP99: loopDelay.percentile(99) / 1e6, loopDelayMax: loopDelay.max / 1e6 })
    loopDelay.reset()
  } else if (message === 'cpu') {
    const usage = process.cpuUsage()
    process.send?.({ cpu: usage.user + usage.system, rss: process.memoryUsage.rss() })
  } else if (message === 'exit') {
    const cleanup = kind === 'gateway-redis' ? deleteBenchKeys() : auditDir !== undefined ? rm(auditDir, { recursive: true, force: true }) : Promise.resolve()
    void cleanup.finally(() => process.exit(0))
  }
})
process.send?.({ url })
