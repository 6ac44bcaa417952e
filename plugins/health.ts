/**
 * Liveness and readiness for load balancers and orchestrators. Readiness checks what a request
 * needs: the session store answers, and every upstream answers HTTP (any status: it is up).
 * While the server closes, Fastify answers every request, these included, with 503.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { within } from '../lib/within.ts'
import { checkHealthOptions, type McpHealthOptions } from './health-options.ts'

export { HEALTH_DEFAULTS, type McpHealthOptions } from './health-options.ts'


async function mcpHealth (fastify: FastifyInstance, options: McpHealthOptions): Promise<void> {
  const { livenessPath, readinessPath, timeoutMs } = checkHealthOptions(options)

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
    /** A virtual server's members that cannot serve: it is ready while one can, and says which. */
    const degraded: string[] = []
    for (const [name, upstream] of upstreams) {
      jobs.push(check(`upstream:${name}`, () => upstream.probe()))
      for (const member of upstream.members?.() ?? []) {
        const key = `upstream:${name}/${member.name}`
        jobs.push(within(member.upstream.probe(), timeoutMs, key).then(() => { checks[key] = 'ok' }, (err: unknown) => {
          checks[key] = (err as Error).message
          degraded.push(key)
        }))
      }
    }
    await Promise.all(jobs)
    if (!ready) request.log.warn({ checks }, 'not ready')
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks, ...(degraded.length > 0 ? { degraded: degraded.sort() } : {}) })
  })
}

export default fp(mcpHealth, {
  name: 'mcp-gateway-health',
  fastify: '5.x',
  dependencies: ['mcp-gateway-sessions']
})
