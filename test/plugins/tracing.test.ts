/**
 * Spans to an in-memory exporter: the gateway's span continues the client's trace, and the
 * upstream's span (made from the traceparent the upstream received) is its child.
 */
import t from 'tap'
import { ROOT_CONTEXT, TraceFlags, propagation, trace } from '@opentelemetry/api'
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { z } from 'zod'
import { openSession, postHeaders } from '../helpers/http.ts'
import { gateway, upstream } from '../helpers/peers.ts'

const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
trace.setGlobalTracerProvider(provider)
// What an application's OpenTelemetry setup registers: W3C trace context and baggage.
propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }))
t.teardown(() => provider.shutdown())

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CLIENT_SPAN = '00f067aa0ba902b7'

for (const jsonResponse of [false, true]) {
  t.test(`a span per MCP request, child of the client's, parent of the upstream's (${jsonResponse ? 'JSON' : 'SSE'})`, async (t) => {
    exporter.reset()
    const seen: string[] = []
    const context: Array<{ tracestate: string, baggage: string }> = []
    const up = await upstream(t, {
      jsonResponse,
      extraTools: (server) => {
        server.registerTool('traced', { inputSchema: { x: z.number() } }, async (_args, extra) => {
          const header = extra.requestInfo?.headers.traceparent
          seen.push(String(header))
          context.push({ tracestate: String(extra.requestInfo?.headers.tracestate), baggage: String(extra.requestInfo?.headers.baggage) })
          const [, traceId, spanId] = String(header).split('-')
          const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: traceId as string, spanId: spanId as string, traceFlags: TraceFlags.SAMPLED, isRemote: true })
          trace.getTracer('upstream').startSpan('upstream tools/call', {}, parent).end()
          return { content: [{ type: 'text', text: 'ok' }] }
        })
      }
    })
    const gw = await gateway(t, { upstream: { name: 'demo', url: up.url }, tracing: true })
    const sessionId = await openSession(gw.url)
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=opaque', baggage: 'tenant=acme' }),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'traced', arguments: { x: 1 } } })
    })
    t.equal(res.status, 200)
    await res.text()
    await provider.forceFlush()
    const spans = exporter.getFinishedSpans()
    const gatewaySpan = spans.find((span) => span.name === 'mcp tools/call')
    const upstreamSpan = spans.find((span) => span.name === 'upstream tools/call')
    t.ok(gatewaySpan, 'the gateway span')
    t.ok(upstreamSpan, 'the upstream span')
    t.equal(gatewaySpan?.spanContext().traceId, CLIENT_TRACE, 'continues the client trace')
    t.equal(gatewaySpan?.parentSpanContext?.spanId, CLIENT_SPAN, 'child of the client span')
    t.equal(upstreamSpan?.parentSpanContext?.spanId, gatewaySpan?.spanContext().spanId, 'the upstream span is its child')
    t.same(gatewaySpan?.attributes, { 'mcp.method.name': 'tools/call', 'mcp.upstream': 'demo', 'mcp.tool.name': 'traced', 'mcp.session.id': sessionId, 'mcp.outcome': '200' })
    t.equal(seen.length, 1)
    t.not(seen[0], `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, 'the upstream gets the gateway span, not the client one')
    t.same(context, [{ tracestate: 'vendor=opaque', baggage: 'tenant=acme' }], 'tracestate and baggage travel through the registered propagators')
  })
}

t.test('2026-07-28 requests carry the trace context in _meta too; failures mark the span', async (t) => {
  exporter.reset()
  const up = await upstream(t)
  // Said to be 2026-era: the request goes through as it is (the demo, a 2025 server, refuses it).
  const gw = await gateway(t, { upstream: { url: up.url, protocol: '2026' }, tracing: { tracerName: 'gw' } })
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } })
  const from = up.record.requests.length
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-method': 'tools/list', 'mcp-protocol-version': '2026-07-28' }), body })
  await res.text()
  await provider.forceFlush()
  const span = exporter.getFinishedSpans().find((s) => s.name === 'mcp tools/list')
  t.ok(span)
  t.equal(span?.status.code, 2, 'the upstream refused it (2025-era demo): an error status')
  const expected = `00-${span?.spanContext().traceId}-${span?.spanContext().spanId}-01`
  t.equal(up.record.requests[from]?.headers.traceparent, expected, 'in the header')
  const sent = up.record.requests[from]?.body as { params: { _meta: Record<string, unknown> } }
  t.equal(sent.params._meta.traceparent, expected, 'and in _meta')
  t.equal(sent.params._meta['io.modelcontextprotocol/protocolVersion'], '2026-07-28', 'the rest of _meta kept')
})
