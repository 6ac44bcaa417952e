/**
 * OpenTelemetry tracing through `@opentelemetry/api` only: a span per MCP POST exchange (method,
 * tool, session, upstream, outcome), continuing the client's W3C trace context and passing its
 * own to the upstream in `traceparent` (and in `_meta` for 2026-07-28 requests). Spans go to
 * whatever tracer provider the application registered (the SDK and exporter are the app's
 * choice); with none, the API is a no-op and this costs next to nothing.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Tracer } from '@opentelemetry/api'
import type { ExchangeObserver } from '../lib/observer.ts'
import { invalid, isPlainObject, optionalString } from '../lib/options.ts'

export interface McpTracingOptions {
  /**
   * Name of the tracer (instrumentation scope).
   * @default 'fastify-mcp-gateway'
   */
  tracerName?: string
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The incoming W3C context, as a remote parent; ROOT when absent or malformed. */
function parentContext (header: string | string[] | undefined): ReturnType<typeof trace.setSpanContext> {
  if (typeof header !== 'string') return ROOT_CONTEXT
  const match = TRACEPARENT.exec(header.trim())
  if (match === null || /^0+$/.test(match[1] as string) || /^0+$/.test(match[2] as string)) return ROOT_CONTEXT
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: match[1] as string,
    spanId: match[2] as string,
    traceFlags: parseInt(match[3] as string, 16) & TraceFlags.SAMPLED,
    isRemote: true
  })
}

export function tracingObserver (tracer: Tracer): ExchangeObserver {
  return {
    start (info) {
      const span = tracer.startSpan(`mcp ${info.method}`, {
        kind: SpanKind.CLIENT,
        attributes: {
          'mcp.method.name': info.method,
          'mcp.upstream': info.upstream,
          ...(info.toolName === undefined ? {} : { 'mcp.tool.name': info.toolName }),
          ...(info.sessionId === undefined ? {} : { 'mcp.session.id': info.sessionId })
        }
      }, parentContext(info.incoming.traceparent))
      const context = span.spanContext()
      const traced = context.traceId !== '00000000000000000000000000000000'
      const traceparent = traced ? `00-${context.traceId}-${context.spanId}-0${context.traceFlags & TraceFlags.SAMPLED}` : undefined
      const headers: Record<string, string> = {}
      if (traceparent !== undefined) headers.traceparent = traceparent
      return {
        headers,
        traceparent,
        end (outcome) {
          if (typeof outcome === 'string' || outcome >= 400) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: String(outcome) })
          }
          span.setAttribute('mcp.outcome', String(outcome))
          span.end()
        }
      }
    }
  }
}

async function mcpTracing (fastify: FastifyInstance, options: McpTracingOptions): Promise<void> {
  if (!isPlainObject(options)) throw invalid('options', 'must be an object')
  const tracerName = optionalString('tracerName', options.tracerName, 'fastify-mcp-gateway')
  fastify.mcpObservers.push(tracingObserver(trace.getTracer(tracerName)))
}

export default fp(mcpTracing, {
  name: 'mcp-gateway-tracing',
  fastify: '5.x',
  dependencies: ['mcp-gateway-proxy']
})
