/**
 * OpenTelemetry tracing through `@opentelemetry/api` only: a span per MCP POST exchange (method,
 * tool, session, upstream, outcome), continuing the client's trace context and passing its own to
 * the upstream, both through the propagators the application registered (W3C trace context and
 * baggage with the usual SDK setup; `traceparent` also goes in `_meta` for 2026-07-28 requests). Spans go to
 * whatever tracer provider the application registered (the SDK and exporter are the app's
 * choice); with none, the API is a no-op and this costs next to nothing.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace, type TextMapGetter, type Tracer } from '@opentelemetry/api'
import type { ExchangeObserver } from '../lib/observer.ts'
import { checkTracingOptions, type McpTracingOptions } from './tracing-options.ts'

export type { McpTracingOptions } from './tracing-options.ts'

/** Reads a Node header object for the registered propagators (a repeated header: its first value). */
const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key.toLowerCase()]
}

export function tracingObserver (tracer: Tracer): ExchangeObserver {
  return {
    start (info) {
      // The client's context, read by the propagators the host registered (none: a new trace).
      const parent = propagation.extract(ROOT_CONTEXT, info.incoming, headerGetter)
      const span = tracer.startSpan(`mcp ${info.method}`, {
        kind: SpanKind.CLIENT,
        attributes: {
          'mcp.method.name': info.method,
          'mcp.upstream': info.upstream,
          ...(info.toolName === undefined ? {} : { 'mcp.tool.name': info.toolName }),
          ...(info.sessionId === undefined ? {} : { 'mcp.session.id': info.sessionId })
        }
      }, parent)
      // What the upstream gets is whatever the host's propagators write (W3C traceparent and
      // tracestate, baggage, or another format), for the gateway's span.
      const headers: Record<string, string> = {}
      propagation.inject(trace.setSpan(parent, span), headers)
      const traceparent = headers.traceparent
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
  const { tracerName } = checkTracingOptions(options)
  fastify.mcpObservers.push(tracingObserver(trace.getTracer(tracerName)))
}

export default fp(mcpTracing, {
  name: 'mcp-gateway-tracing',
  fastify: '5.x',
  dependencies: ['mcp-gateway-proxy']
})
