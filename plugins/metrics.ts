/**
 * Prometheus metrics on `fastify-metrics` (HTTP metrics, Node vitals) plus the gateway's own MCP
 * series. Two ways:
 * - the host has not registered `fastify-metrics`: this plugin registers it, with a registry of
 *   this instance's (so several gateways in one process never collide), served at `endpoint`;
 * - the host registered `fastify-metrics` first: its client and global registry are used, so the
 *   MCP series show on the host's own endpoint; endpoint, Node vitals and route histograms are the
 *   host's registration's business, and setting them here is refused.
 * Labels are low-cardinality by construction: never a session id or an argument; methods outside
 * the MCP spec count as "other"; tool names only from an allow-list.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fastifyMetrics from 'fastify-metrics'

// fastify-metrics is CommonJS with `exports.default`: take the plugin itself, typed.
const metricsPlugin = ((fastifyMetrics as unknown as { default?: typeof fastifyMetrics }).default ?? fastifyMetrics) as unknown as FastifyPluginAsync<Record<string, unknown>>
import type { Registry } from 'prom-client'
import type { IFastifyMetrics } from 'fastify-metrics'
import { methodLabel, type ExchangeObserver } from '../lib/observer.ts'
import { invalid } from '../lib/options.ts'
import type { PolicyGate } from '../lib/policy/gate.ts'
import { within } from '../lib/within.ts'
import type { AuditLog } from '../lib/audit/log.ts'
import type { ToolPins } from '../lib/pinning/pins.ts'
import type { Approvals } from '../lib/approval/approvals.ts'

/** Longest wait for one virtual server member's probe at a scrape. */
const MEMBER_PROBE_MS = 2000
import { checkMetricsOptions, type McpMetricsOptions } from './metrics-options.ts'
import { stdioMetrics } from './metrics-stdio.ts'

export type { McpMetricsOptions } from './metrics-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The registry holding this gateway's metrics. */
    mcpMetricsRegistry: Registry
  }
}

/** The host's fastify-metrics, when it registered the plugin before this one. */
function hostMetrics (fastify: FastifyInstance): IFastifyMetrics | undefined {
  if (!fastify.hasDecorator('metrics')) return undefined
  const metrics = fastify.metrics as Partial<IFastifyMetrics> | undefined
  if (metrics?.client?.Registry === undefined) throw invalid('metrics', 'the host decorated `fastify.metrics` with something other than fastify-metrics')
  return metrics as IFastifyMetrics
}

async function mcpMetrics (fastify: FastifyInstance, options: McpMetricsOptions): Promise<void> {
  const host = hostMetrics(fastify)
  const checked = checkMetricsOptions(options, host !== undefined)
  let client: IFastifyMetrics['client']
  let registry: Registry
  if (host !== undefined) {
    client = host.client
    registry = host.client.register
  } else {
    // The prom-client fastify-metrics would resolve itself, handed over so both use one module.
    client = (await import('prom-client')).default
    registry = new client.Registry()
    await fastify.register(metricsPlugin, {
      promClient: client,
      endpoint: checked.endpoint,
      defaultMetrics: { enabled: checked.defaultMetrics, register: registry },
      // The MCP routes exist before this plugin sees routes being added: measure every route.
      // Histograms only: summaries cost a quantile update per request and do not aggregate.
      routeMetrics: { enabled: checked.routeMetrics ? { histogram: true, summary: false } : false, registeredRoutesOnly: false, overrides: { histogram: { registers: [registry] }, summary: { registers: [registry] } } }
    })
  }
  fastify.decorate('mcpMetricsRegistry', registry)

  const registers = [registry]
  const sessions = fastify.mcpSessions
  const hub = fastify.hasDecorator('mcpStreams') ? fastify.mcpStreams : undefined

  new client.Gauge({
    name: 'mcp_gateway_sessions_active',
    help: 'Live gateway sessions',
    registers,
    async collect () { this.set(await sessions.count()) }
  })
  // Probed at scrape time, as `/readyz` does: 1 while a virtual server's member can serve.
  new client.Gauge({
    name: 'mcp_gateway_virtual_member_up',
    help: 'Whether a virtual server\'s member upstream can serve (1) or not (0)',
    labelNames: ['upstream', 'member'],
    registers,
    async collect () {
      this.reset()
      const probes: Array<Promise<void>> = []
      for (const [name, upstream] of fastify.mcpUpstreams) {
        for (const member of upstream.members?.() ?? []) {
          const up = within(member.upstream.probe(), MEMBER_PROBE_MS, member.name).then(() => 1, () => 0)
          probes.push(up.then((value) => { this.set({ upstream: name, member: member.name }, value) }))
        }
      }
      await Promise.all(probes)
    }
  })
  // Counters fed from the session manager's own counts at scrape time: nothing on the hot path.
  for (const [key, help] of [['created', 'Sessions opened'], ['expired', 'Sessions expired by idle timeout or lifetime'], ['rejected', 'Initialize requests refused by the session cap'], ['ended', 'Sessions ended for any reason']] as const) {
    let seen = 0
    new client.Counter({
      name: `mcp_gateway_sessions_${key}_total`,
      help,
      registers,
      collect () {
        const now = sessions.counts[key]
        this.inc(now - seen)
        seen = now
      }
    })
  }
  if (hub !== undefined) {
    new client.Gauge({ name: 'mcp_gateway_sse_streams_open', help: 'Client SSE streams open', registers, collect () { this.set(hub.openWriters) } })
    let replayed = 0
    new client.Counter({
      name: 'mcp_gateway_events_replayed_total',
      help: 'Events written to clients from the event log (resumptions)',
      registers,
      collect () {
        this.inc(hub.counts.replayed - replayed)
        replayed = hub.counts.replayed
      }
    })
    const logEvents = new client.Gauge({ name: 'mcp_gateway_event_log_events', help: 'Events held in the event log', registers })
    // A counter kept by the store (the in-memory log's global byte budget); read with the stats.
    let evicted = 0
    new client.Gauge({
      name: 'mcp_gateway_event_log_bytes',
      help: 'Bytes of event data held in the event log',
      registers,
      async collect () {
        const stats = await hub.store.stats()
        this.set(stats.bytes)
        logEvents.set(stats.events)
        if (stats.evicted !== undefined && stats.evicted > evicted) {
          evictions.inc(stats.evicted - evicted)
          evicted = stats.evicted
        }
      }
    })
    // Registered after the gauge: metrics are collected in that order, so it is current.
    const evictions = new client.Counter({ name: 'mcp_gateway_event_log_evicted_total', help: 'Events evicted from the in-memory event log to keep its global byte budget (retention.maxBytesTotal)', registers })
  }

  if (fastify.hasDecorator('mcpInterceptors')) {
    const chain = fastify.mcpInterceptors
    const seen: Record<string, number> = {}
    new client.Counter({
      name: 'mcp_gateway_interceptor_actions_total',
      help: 'Interceptor decisions other than continue, by action ("error": a handler failed or timed out)',
      labelNames: ['action'],
      registers,
      collect () {
        for (const [action, count] of Object.entries(chain.counts)) {
          this.inc({ action }, count - (seen[action] ?? 0))
          seen[action] = count
        }
      }
    })
  }

  stdioMetrics(client, fastify, registers)
  if (fastify.hasDecorator('mcpPolicy')) policyMetrics(client, fastify.mcpPolicy, registers)
  if (fastify.hasDecorator('mcpAudit')) auditMetrics(client, fastify.mcpAudit, registers)
  if (fastify.hasDecorator('mcpPins')) pinMetrics(client, fastify.mcpPins, registers)
  if (fastify.hasDecorator('mcpApprovals')) approvalMetrics(client, fastify.mcpApprovals, registers)

  const messages = new client.Counter({ name: 'mcp_gateway_messages_total', help: 'JSON-RPC messages through the gateway', labelNames: ['upstream', 'direction', 'kind', 'method'], registers })
  const toolCalls = new client.Counter({ name: 'mcp_gateway_tool_calls_total', help: 'tools/call requests by tool (allow-listed names, else "other")', labelNames: ['upstream', 'tool'], registers })
  const duration = new client.Histogram({
    name: 'mcp_gateway_upstream_request_duration_seconds',
    help: 'Time from sending a POST upstream to its response headers',
    labelNames: ['upstream', 'method'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers
  })
  const refused = new client.Counter({ name: 'mcp_gateway_refused_total', help: 'Requests the gateway answered with an error, by error code and HTTP status', labelNames: ['upstream', 'code', 'status'], registers })
  const upstreamErrors = new client.Counter({ name: 'mcp_gateway_upstream_errors_total', help: 'Upstream requests that failed, by kind', labelNames: ['upstream', 'kind'], registers })
  const dropped = new client.Counter({ name: 'mcp_gateway_upstream_responses_dropped_total', help: 'Upstream responses not passed to the client, by reason: to no request of the exchange (stray), a second answer (duplicate), an answer to a request the client cancelled (cancelled)', labelNames: ['upstream', 'reason'], registers })
  const eras = new client.Counter({ name: 'mcp_gateway_requests_by_era_total', help: 'POSTs forwarded, by the client\'s protocol era and the upstream\'s', labelNames: ['upstream', 'client_era', 'upstream_era'], registers })
  const limited = new client.Counter({ name: 'mcp_gateway_limited_total', help: 'Limits hit: request bodies over bodyLimit (limit="body", refused with 413), tool results over resultLimits (limit="result", truncated or refused)', labelNames: ['upstream', 'limit', 'action'], registers })
  const eraChildren = new Map<string, { inc: () => void }>()
  const tools = new Set(checked.toolNames)

  // Label children cached by their values: prom-client hashes a label object on every call, and
  // these run for every message. The label sets are bounded, so the caches are too.
  const messageChildren = new Map<string, { inc: () => void }>()
  const toolChildren = new Map<string, { inc: () => void }>()
  const durationChildren = new Map<string, { observe: (value: number) => void }>()

  const observer: ExchangeObserver = {
    message (direction, message, upstream) {
      const kind = 'method' in message ? ('id' in message ? 'request' : 'notification') : ('error' in message ? 'error' : 'response')
      const method = 'method' in message ? methodLabel(message.method) : ''
      const key = `${upstream}\0${direction}\0${kind}\0${method}`
      let child = messageChildren.get(key)
      if (child === undefined) {
        child = messages.labels({ upstream, direction, kind, method })
        messageChildren.set(key, child)
      }
      child.inc()
      if (direction === 'client_to_upstream' && method === 'tools/call') {
        const name = 'params' in message ? message.params?.name : undefined
        const tool = typeof name === 'string' && tools.has(name) ? name : 'other'
        const toolKey = `${upstream}\0${tool}`
        let toolChild = toolChildren.get(toolKey)
        if (toolChild === undefined) {
          toolChild = toolCalls.labels({ upstream, tool })
          toolChildren.set(toolKey, toolChild)
        }
        toolChild.inc()
      }
    },
    era (upstream, clientEra, upstreamEra) {
      const key = `${upstream}\0${clientEra}\0${upstreamEra}`
      let child = eraChildren.get(key)
      if (child === undefined) {
        child = eras.labels({ upstream, client_era: clientEra, upstream_era: upstreamEra })
        eraChildren.set(key, child)
      }
      child.inc()
    },
    dropped (upstream, reason) {
      dropped.inc({ upstream, reason })
    },
    refused (upstream, code, status) {
      refused.inc({ upstream, code, status: String(status) })
    },
    limited (upstream, limit, action) {
      limited.inc({ upstream, limit, action })
    },
    upstreamRequest (upstream, method, seconds, outcome) {
      const key = `${upstream}\0${method}`
      let child = durationChildren.get(key)
      if (child === undefined) {
        child = duration.labels({ upstream, method })
        durationChildren.set(key, child)
      }
      child.observe(seconds)
      if (typeof outcome === 'string') {
        upstreamErrors.inc({ upstream, kind: outcome.replace(/^MCP_GW_UPSTREAM_/, '').toLowerCase() })
      } else if (outcome >= 500) {
        upstreamErrors.inc({ upstream, kind: 'http_5xx' })
      } else if (outcome === 401 || outcome === 403) {
        upstreamErrors.inc({ upstream, kind: 'auth' })
      }
    }
  }
  fastify.mcpObservers.push(observer)
  if (host !== undefined) {
    // The host's registry outlives this gateway: its series go with it, so that the next
    // gateway on that registry (a restart in the same process, a test) can register them again,
    // and no collector reads a closed session manager.
    fastify.addHook('onClose', async () => {
      for (const metric of registry.getMetricsAsArray()) {
        const name = (metric as unknown as { name: string }).name
        if (name.startsWith('mcp_gateway_')) registry.removeSingleMetric(name)
      }
    })
  }
}

export default fp(mcpMetrics, {
  name: 'mcp-gateway-metrics',
  fastify: '5.x',
  dependencies: ['mcp-gateway-sessions', 'mcp-gateway-proxy']
})

/** The policy in force (its version, whether the last reload failed) and decisions by rule. */
function policyMetrics (client: IFastifyMetrics['client'], gate: PolicyGate, registers: Registry[]): void {
  new client.Gauge({ name: 'mcp_gateway_policy_version', help: 'Policies loaded since start (1: the first; a reload that failed leaves it)', registers, collect () { this.set(gate.version) } })
  new client.Gauge({ name: 'mcp_gateway_policy_reload_failed', help: '1 when the last reload of the policy file failed (the policy before it is in force)', registers, collect () { this.set(gate.reloadFailed ? 1 : 0) } })
  const seen = new Map<string, number>()
  new client.Counter({
    name: 'mcp_gateway_policy_decisions_total',
    help: 'Policy decisions by the rule that decided ("(default)": none did) and effect',
    labelNames: ['rule', 'effect'],
    registers,
    collect () {
      for (const [rule, counts] of gate.decisions) {
        for (const effect of ['allow', 'deny', 'approve'] as const) {
          const key = `${rule}\u0000${effect}`
          this.inc({ rule, effect }, counts[effect] - (seen.get(key) ?? 0))
          seen.set(key, counts[effect])
        }
      }
    }
  })
}

type Client = IFastifyMetrics['client']

/**
 * A counter that follows counts kept elsewhere (since start, one per label value): each scrape adds
 * what each count grew by since the last.
 */
function followCounts<K extends string> (client: Client, registers: Registry[], spec: { name: string, help: string, label: string, keys: readonly K[] }, counts: Readonly<Record<K, number>>): void {
  const seen = Object.fromEntries(spec.keys.map((key) => [key, 0])) as Record<K, number>
  new client.Counter({
    name: spec.name,
    help: spec.help,
    labelNames: [spec.label],
    registers,
    collect () {
      for (const key of spec.keys) {
        this.inc({ [spec.label]: key }, counts[key] - seen[key])
        seen[key] = counts[key]
      }
    }
  })
}

/** A gauge of what waits in a store, read at scrape; a store that is away (Redis) leaves the last value. */
function pendingGauge (client: Client, registers: Registry[], name: string, help: string, pending: () => Promise<unknown[]>): void {
  new client.Gauge({
    name,
    help,
    registers,
    async collect () {
      try {
        this.set((await pending()).length)
      } catch {}
    }
  })
}

/** The audit log: records written, dropped (queue full) and lost to failed writes; the queue. */
function auditMetrics (client: Client, audit: AuditLog, registers: Registry[]): void {
  followCounts(client, registers, {
    name: 'mcp_gateway_audit_records_total',
    help: 'Audit records by result: written, dropped (the queue was full), failed (a write failed; the chain records the loss)',
    label: 'result',
    keys: ['written', 'dropped', 'failed']
  }, audit)
  new client.Gauge({ name: 'mcp_gateway_audit_queue', help: 'Audit records waiting to be written', registers, collect () { this.set(audit.queued) } })
}

/** Tool pins: changes and new tools seen, approvals; what waits for approval. */
function pinMetrics (client: Client, pins: ToolPins, registers: Registry[]): void {
  followCounts(client, registers, {
    name: 'mcp_gateway_pin_changes_total',
    help: 'Tool definitions seen changed since pinned (changed), new tools held (new), approvals (approved)',
    label: 'kind',
    keys: ['changed', 'new', 'approved']
  }, pins.counts)
  pendingGauge(client, registers, 'mcp_gateway_pins_pending', 'Tool definitions waiting for approval', async () => await pins.pending())
}

/** Calls held for approval on this instance, by how they ended; what waits now (on every instance). */
function approvalMetrics (client: Client, approvals: Approvals, registers: Registry[]): void {
  followCounts(client, registers, {
    name: 'mcp_gateway_approvals_total',
    help: 'Tool calls held for approval on this instance (held), and how they ended (approved, denied, timeout, cancelled)',
    label: 'outcome',
    keys: ['held', 'approved', 'denied', 'timeout', 'cancelled']
  }, approvals.counts)
  pendingGauge(client, registers, 'mcp_gateway_approvals_pending', 'Tool calls waiting for approval (on every instance sharing the store)', async () => await approvals.pending())
}
