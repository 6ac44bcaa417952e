/**
 * Metrics of stdio upstreams' children, read at scrape time from each upstream's report (its
 * members' too, behind a virtual server): nothing is counted on the request path.
 */
import type { FastifyInstance } from 'fastify'
import type { IFastifyMetrics } from 'fastify-metrics'
import type { Registry } from 'prom-client'
import type { ChildrenReport } from '../lib/upstream/stdio-pool.ts'

type Client = IFastifyMetrics['client']

/** Every upstream that runs children, by name, with its report now. */
function reports (fastify: FastifyInstance): Array<[string, ChildrenReport]> {
  const out: Array<[string, ChildrenReport]> = []
  for (const [name, upstream] of fastify.mcpUpstreams) {
    const own = upstream.children?.()
    if (own !== undefined) out.push([name, own])
    for (const member of upstream.members?.() ?? []) {
      const report = member.upstream.children?.()
      if (report !== undefined) out.push([`${name}/${member.name}`, report])
    }
  }
  return out
}

export function stdioMetrics (client: Client, fastify: FastifyInstance, registers: Registry[]): void {
  // One scrape reads the reports once: the children gauge is collected first, the others after it.
  let current: Array<[string, ChildrenReport]> = []
  new client.Gauge({
    name: 'mcp_gateway_stdio_children',
    help: 'stdio upstream child processes, serving a session (state="session") or started ahead and waiting (state="spare")',
    labelNames: ['upstream', 'state'],
    registers,
    collect () {
      current = reports(fastify)
      this.reset()
      for (const [upstream, report] of current) {
        this.set({ upstream, state: 'session' }, report.sessions)
        this.set({ upstream, state: 'spare' }, report.spares)
      }
    }
  })
  new client.Gauge({
    name: 'mcp_gateway_stdio_child_oldest_seconds',
    help: 'Age of the oldest child process of a stdio upstream',
    labelNames: ['upstream'],
    registers,
    collect () {
      this.reset()
      for (const [upstream, report] of current) this.set({ upstream }, report.oldestSeconds)
    }
  })
  const seen = new Map<string, number>()
  new client.Counter({
    name: 'mcp_gateway_stdio_children_retired_total',
    help: 'stdio children the gateway retired: past maxLifetimeMs (reason="lifetime") or maxMemoryMb (reason="memory")',
    labelNames: ['upstream', 'reason'],
    registers,
    collect () {
      for (const [upstream, report] of current) {
        for (const reason of ['lifetime', 'memory'] as const) {
          const key = `${upstream}\0${reason}`
          this.inc({ upstream, reason }, report.retired[reason] - (seen.get(key) ?? 0))
          seen.set(key, report.retired[reason])
        }
      }
    }
  })
}
