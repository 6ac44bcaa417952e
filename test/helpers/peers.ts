/** Real peers for tests: the demo upstream, a gateway on a real socket, and SDK clients. */
import Fastify, { type FastifyInstance } from 'fastify'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { ElicitRequestSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import mcpGateway, { type McpGatewayOptions } from '../../plugins/index.ts'
import { startDemoUpstream, type DemoUpstream, type DemoUpstreamOptions } from '../../examples/demo-upstream/server.ts'

interface Teardown {
  teardown (fn: () => unknown): void
}

export async function upstream (t: Teardown, options: DemoUpstreamOptions = {}): Promise<DemoUpstream> {
  const server = await startDemoUpstream(options)
  t.teardown(() => server.close())
  return server
}

export interface RunningGateway {
  app: FastifyInstance
  /** The MCP endpoint URL. */
  url: string
}

export async function gateway (t: Teardown, options: McpGatewayOptions, setup?: (app: FastifyInstance) => void | Promise<void>): Promise<RunningGateway> {
  const app = Fastify({ logger: false })
  await app.register(mcpGateway, options)
  await setup?.(app)
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url: `${address}${options.path ?? '/mcp'}` }
}

export interface ClientOptions {
  /** Answer elicitation requests with this. */
  onElicit?: (message: string) => { ok: boolean }
}

export interface TestClient {
  client: Client
  transport: StreamableHTTPClientTransport
  /**
   * Every message the client's transport received, in arrival order. With a JSON-answering
   * upstream, progress travels on the GET stream, a different connection than the answer: the SDK
   * drops progress it reads after the answer, so what the gateway delivered is counted here.
   */
  received: JSONRPCMessage[]
}

export async function client (t: Teardown, url: string, options: ClientOptions = {}): Promise<TestClient> {
  const transport = new StreamableHTTPClientTransport(new URL(url))
  const c = new Client({ name: 'test-client', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } })
  const onElicit = options.onElicit
  if (onElicit !== undefined) {
    c.setRequestHandler(ElicitRequestSchema, async (request) => ({ action: 'accept', content: onElicit(request.params.message) }))
  }
  await c.connect(transport)
  const received = recordReceived(transport)
  t.teardown(() => c.close())
  return { client: c, transport, received }
}

/**
 * Every message a connected client's transport receives from now on, in arrival order (the client
 * still gets each): what the gateway delivered, whatever the SDK then does with it.
 */
export function recordReceived (transport: Transport): JSONRPCMessage[] {
  const received: JSONRPCMessage[] = []
  const deliver = transport.onmessage
  transport.onmessage = (message: JSONRPCMessage, extra?: Parameters<NonNullable<Transport['onmessage']>>[1]) => {
    received.push(message)
    deliver?.(message, extra)
  }
  return received
}

/** Resolves when `check` passes, polling; rejects after `ms`. */
export async function eventually (check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** The `progress` values of the progress notifications among `messages`, in order. */
export function progressIn (messages: readonly JSONRPCMessage[]): number[] {
  const values: number[] = []
  for (const message of messages) {
    if ('method' in message && message.method === 'notifications/progress') values.push((message.params as { progress: number }).progress)
  }
  return values
}

export function textOf (result: unknown): string {
  const content = (result as { content?: Array<{ type: string, text?: string }> }).content ?? []
  return content.map((item) => item.text ?? '').join('')
}

export const MODES = [
  { name: 'SSE responses', jsonResponse: false },
  { name: 'JSON responses', jsonResponse: true }
] as const
