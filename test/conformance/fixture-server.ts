/**
 * The upstream for the official MCP conformance suite's server scenarios: an SDK server with the
 * tools, resources and prompts the scenarios call (written from the suite's scenario list), on
 * Streamable HTTP with sessions, an event store (SSE polling) and Host/Origin checks (DNS
 * rebinding). The conformance run tests it directly and through the gateway.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { CompleteRequestSchema, ListToolsRequestSchema, SubscribeRequestSchema, UnsubscribeRequestSchema, isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { DemoEventStore } from '../../examples/demo-upstream/event-store.ts'

// A 1x1 PNG and a tiny WAV, base64.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=='
const WAV = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA='
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function build (): McpServer {
  const mcp = new McpServer({ name: 'conformance-fixtures', version: '1.0.0' }, {
    capabilities: { logging: {}, completions: {}, resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true }, tools: { listChanged: true } }
  })
  const text = (value: string): { content: Array<{ type: 'text', text: string }> } => ({ content: [{ type: 'text', text: value }] })

  mcp.registerTool('test_simple_text', { description: 'Returns simple text' }, async () => text('This is a simple text response for testing.'))
  mcp.registerTool('test_image_content', { description: 'Returns an image' }, async () => ({ content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] }))
  mcp.registerTool('test_audio_content', { description: 'Returns audio' }, async () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }))
  mcp.registerTool('test_embedded_resource', { description: 'Returns an embedded resource' }, async () => ({
    content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }]
  }))
  mcp.registerTool('test_multiple_content_types', { description: 'Returns text, an image and a resource' }, async () => ({
    content: [
      { type: 'text', text: 'Multiple content types test:' },
      { type: 'image', data: PNG, mimeType: 'image/png' },
      { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } }
    ]
  }))
  mcp.registerTool('test_tool_with_logging', { description: 'Logs three messages while it runs' }, async (extra) => {
    for (const data of ['Tool execution started', 'Tool processing data', 'Tool execution completed']) {
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data } })
      await sleep(20)
    }
    return text('Tool with logging executed successfully')
  })
  mcp.registerTool('test_error_handling', { description: 'Always fails' }, async () => ({ isError: true, ...text('This tool intentionally returns an error for testing') }))
  mcp.registerTool('test_tool_with_progress', { description: 'Reports progress 0, 50, 100' }, async (extra) => {
    const progressToken = extra._meta?.progressToken
    for (const progress of [0, 50, 100]) {
      if (progressToken !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: 100 } })
      await sleep(50)
    }
    return text(String(progressToken ?? 'no progress token'))
  })
  mcp.registerTool('test_sampling', { description: 'Asks the client to sample', inputSchema: { prompt: z.string() } }, async ({ prompt }, extra) => {
    const result = await extra.sendRequest({ method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 } }, z.object({ content: z.object({ text: z.string().optional() }).passthrough() }).passthrough())
    return text(`LLM response: ${result.content.text ?? ''}`)
  })
  const elicit = async (extra: { sendRequest: (...args: never[]) => unknown }, params: Record<string, unknown>): Promise<{ content: Array<{ type: 'text', text: string }> }> => {
    const send = extra.sendRequest as unknown as (request: unknown, schema: unknown) => Promise<{ action: string, content?: unknown }>
    const result = await send({ method: 'elicitation/create', params }, z.object({ action: z.string(), content: z.unknown().optional() }).passthrough())
    return text(`Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`)
  }
  mcp.registerTool('test_elicitation', { description: 'Asks the user', inputSchema: { message: z.string() } }, async ({ message }, extra) =>
    await elicit(extra as never, { message, requestedSchema: { type: 'object', properties: { username: { type: 'string', description: 'User name' }, email: { type: 'string', description: 'Email address' } }, required: ['username', 'email'] } }))
  mcp.registerTool('test_elicitation_sep1034_defaults', { description: 'Elicitation with defaults' }, async (extra) =>
    await elicit(extra as never, {
      message: 'Please review and update the form fields with defaults',
      requestedSchema: {
        type: 'object',
        properties: {
          name: { type: 'string', description: 'User name', default: 'John Doe' },
          age: { type: 'integer', description: 'User age', default: 30 },
          score: { type: 'number', description: 'User score', default: 95.5 },
          status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
          verified: { type: 'boolean', description: 'Verification status', default: true }
        },
        required: []
      }
    }))
  mcp.registerTool('test_elicitation_sep1330_enums', { description: 'Elicitation with every enum form' }, async (extra) =>
    await elicit(extra as never, {
      message: 'Please select options from the enum fields',
      requestedSchema: {
        type: 'object',
        properties: {
          untitledSingle: { type: 'string', description: 'Untitled single', enum: ['option1', 'option2', 'option3'] },
          titledSingle: { type: 'string', description: 'Titled single', oneOf: [{ const: 'value1', title: 'First Option' }, { const: 'value2', title: 'Second Option' }, { const: 'value3', title: 'Third Option' }] },
          legacyEnum: { type: 'string', description: 'Legacy titled', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
          untitledMulti: { type: 'array', description: 'Untitled multi', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
          titledMulti: { type: 'array', description: 'Titled multi', items: { anyOf: [{ const: 'value1', title: 'First Choice' }, { const: 'value2', title: 'Second Choice' }, { const: 'value3', title: 'Third Choice' }] } }
        },
        required: []
      }
    }))
  mcp.registerTool('test_reconnection', { description: 'Closes its SSE stream mid-call, then answers (SSE polling)' }, async (extra) => {
    await sleep(50)
    ;(extra as { closeSSEStream?: () => void }).closeSSEStream?.()
    await sleep(150)
    return text('Reconnection test completed successfully')
  })

  mcp.registerResource('static-text', 'test://static-text', { description: 'A static text resource', mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] }))
  mcp.registerResource('static-binary', 'test://static-binary', { description: 'A static binary resource', mimeType: 'image/png' }, async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }] }))
  mcp.registerResource('watched-resource', 'test://watched-resource', { description: 'A resource to subscribe to', mimeType: 'text/plain' }, async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'watched' }] }))
  mcp.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined }), { description: 'A resource template', mimeType: 'application/json' }, async (uri, { id }) => ({
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${String(id)}` }) }]
  }))

  mcp.registerPrompt('test_simple_prompt', { description: 'A simple prompt' }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] }))
  mcp.registerPrompt('test_prompt_with_arguments', { description: 'A prompt with arguments', argsSchema: { arg1: z.string(), arg2: z.string() } }, async ({ arg1, arg2 }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }]
  }))
  mcp.registerPrompt('test_prompt_with_embedded_resource', { description: 'A prompt with a resource', argsSchema: { resourceUri: z.string() } }, async ({ resourceUri }) => ({
    messages: [
      { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } }
    ]
  }))
  mcp.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image' }, async () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } }
    ]
  }))
  const subscriptions = new Set<string>()
  mcp.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    subscriptions.add(request.params.uri)
    return {}
  })
  mcp.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscriptions.delete(request.params.uri)
    return {}
  })
  mcp.server.setRequestHandler(CompleteRequestSchema, async (request) => {
    const partial = request.params.argument.value
    const values = ['paris', 'park', 'party'].filter((value) => value.startsWith(partial))
    return { completion: { values, total: values.length, hasMore: false } }
  })
  // JSON Schema 2020-12 keywords ($schema, $defs, additionalProperties) must survive listing, so
  // this tool is added to the SDK's own listing as raw JSON Schema.
  const handlers = (mcp.server as unknown as { _requestHandlers: Map<string, (request: unknown, extra: unknown) => Promise<{ tools: unknown[] }>> })._requestHandlers
  const list = handlers.get('tools/list')
  mcp.server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
    const listed = list === undefined ? { tools: [] } : await list(request, extra)
    return {
      ...listed,
      tools: [...listed.tools, {
        name: 'json_schema_2020_12_tool',
        description: 'Tool with JSON Schema 2020-12 features',
        inputSchema: {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'object',
          $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
          properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
          additionalProperties: false
        }
      }]
    } as never
  })
  return mcp
}

/** Host and Origin must name this machine: a rebinding attacker's page sends its own names. */
function localhostOnly (req: IncomingMessage): boolean {
  const local = /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/
  const host = req.headers.host ?? ''
  if (!local.test(host)) return false
  const origin = req.headers.origin
  if (origin === undefined) return true
  try {
    return local.test(new URL(origin).host)
  } catch {
    return false
  }
}

async function readJson (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

export interface FixtureServer {
  url: string
  server: Server
  close: () => Promise<void>
}

export async function startFixtureServer (port = 0): Promise<FixtureServer> {
  const transports = new Map<string, StreamableHTTPServerTransport>()
  const server = createServer((req, res) => {
    void (async () => {
      if (!localhostOnly(req)) {
        res.writeHead(403, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Forbidden: Host or Origin is not localhost"}}')
        return
      }
      const body = req.method === 'POST' ? await readJson(req) : undefined
      const sessionId = req.headers['mcp-session-id']
      let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined
      if (transport === undefined) {
        if (sessionId !== undefined) {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}')
          return
        }
        if (req.method !== 'POST' || !isInitializeRequest(body)) {
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: Mcp-Session-Id header is required"}}')
          return
        }
        const mcp = build()
        const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: randomUUID,
          eventStore: new DemoEventStore(),
          retryInterval: 500,
          onsessioninitialized: (id) => { transports.set(id, created) },
          onsessionclosed: (id) => { transports.delete(id) }
        })
        await mcp.connect(created)
        transport = created
      }
      await transport.handleRequest(req, res, body)
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end()
      else res.destroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    url: `http://localhost:${(server.address() as AddressInfo).port}/mcp`,
    server,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
