/**
 * Liveness and readiness for load balancers and orchestrators. Readiness checks what a request
 * needs: the session store answers, and every upstream answers HTTP (any status: it is up).
 * While the server closes, Fastify answers every request, these included, with 503.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { REGISTER_OPTION_KEYS, invalid, isPlainObject, knownKeys, optionalInteger, optionalString } from '../lib/options.ts'

export interface McpHealthOptions {
  /** @default '/healthz' */
  livenessPath?: string
  /** @default '/readyz' */
  readinessPath?: string
  /**
   * How long each readiness check may take.
   * @default 2000
   */
  timeoutMs?: number
}

export const HEALTH_DEFAULTS = { livenessPath: '/healthz', readinessPath: '/readyz', timeoutMs: 2000 } as const

function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)
    timer.unref()
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function mcpHealth (fastify: FastifyInstance, options: McpHealthOptions): Promise<void> {
  if (!isPlainObject(options)) throw invalid('options', 'must be an object')
  knownKeys('health', options, [...REGISTER_OPTION_KEYS, 'livenessPath', 'readinessPath', 'timeoutMs'])
  const livenessPath = optionalString('livenessPath', options.livenessPath, HEALTH_DEFAULTS.livenessPath)
  const readinessPath = optionalString('readinessPath', options.readinessPath, HEALTH_DEFAULTS.readinessPath)
  const timeoutMs = optionalInteger('timeoutMs', options.timeoutMs, 1, HEALTH_DEFAULTS.timeoutMs)

  fastify.get(livenessPath, { logLevel: 'warn' }, async () => ({ status: 'ok' }))

  fastify.get(readinessPath, { logLevel: 'warn' }, async (request, reply) => {
    const checks: Record<string, string> = {}
    let ready = true
    const check = async (name: string, run: () => Promise<unknown>): Promise<void> => {
      try {
        await within(run(), timeoutMs, name)
        checks[name] = 'ok'
      } catch (err) {
        ready = false
        checks[name] = (err as Error).message
      }
    }
    const jobs = [check('sessionStore', () => fastify.mcpSessions.count())]
    const upstreams = fastify.mcpUpstreams
    for (const [name, upstream] of upstreams) {
      jobs.push(check(`upstream:${name}`, () => upstream.probe()))
    }
    await Promise.all(jobs)
    if (!ready) request.log.warn({ checks }, 'not ready')
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks })
  })
}

export default fp(mcpHealth, {
  name: 'mcp-gateway-health',
  fastify: '5.x',
  dependencies: ['mcp-gateway-sessions']
})
