/**
 * A real MCP server built with `@modelcontextprotocol/sdk`: the upstream `npm start` puts the
 * gateway in front of, and the peer of the end-to-end tests and benchmarks.
 *
 * Tools:
 * - `echo` returns its text; `add` adds two numbers;
 * - `countdown` reports progress once per step, then answers;
 * - `wait` waits (or until cancelled) and records whether it was cancelled;
 * - `confirm` asks the client a question (elicitation) on the server-to-client GET stream.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import { DemoEventStore } from './event-store.ts'
import { addTool, buildDemoServer } from './tools.ts'

export interface DemoUpstreamOptions {
  host?: string
  /** @default 0 (any free port) */
  port?: number
  /** @default '/mcp' */
  path?: string
  /**
   * Answer requests with one JSON body instead of an SSE stream. The SDK then drops notifications
   * tied to a request, so `countdown` sends its progress on the GET stream instead.
   * @default false
   */
  jsonResponse?: boolean
  /**
   * Give every SSE event an id and keep them (the SDK's in-memory event store), so a client (or
   * the gateway) can resume a cut stream with `Last-Event-ID`.
   * @default false
   */
  resumable?: boolean
  /**
   * Keep every request in `record` (tests read it). Off for long runs (bench, soak): the record
   * would grow without bound.
   * @default true
   */
  recordRequests?: boolean
  /** Registers more tools on each session's server (tests use this). */
  extraTools?: (server: McpServer) => void
}

/** What the upstream saw, for tests to assert on. */
export interface DemoUpstreamRecord {
  /** Every HTTP request (POST bodies parsed), in order. */
  requests: Array<{ method: string, headers: IncomingMessage['headers'], body?: unknown }>
  /** Ids of `wait` calls that ended because the request was cancelled. */
  cancelled: Array<string | number>
  /** Upstream session ids closed by DELETE. */
  closedSessions: string[]
}

export interface DemoUpstream {
  url: string
  server: Server
  record: DemoUpstreamRecord
  /** Live upstream sessions. */
  sessionCount: () => number
  close: () => Promise<void>
}

async function readJson (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  if (chunks.length === 0) return undefined
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

function refuse (res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message } }))
}

export async function startDemoUpstream (options: DemoUpstreamOptions = {}): Promise<DemoUpstream> {
  const path = options.path ?? '/mcp'
  const jsonResponse = options.jsonResponse ?? false
  const transports = new Map<string, StreamableHTTPServerTransport>()
  const servers = new Set<McpServer>()
  /** Tools added by `grow`: every session has them. */
  const grown = new Set<string>()
  const record: DemoUpstreamRecord = { requests: [], cancelled: [], closedSessions: [] }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.url === undefined || new URL(req.url, 'http://x').pathname !== path) {
      refuse(res, 404, 'Not found')
      return
    }
    const entry: DemoUpstreamRecord['requests'][number] = { method: req.method ?? '', headers: req.headers }
    if (options.recordRequests !== false) record.requests.push(entry)
    let body: unknown
    if (req.method === 'POST') {
      try {
        body = await readJson(req)
      } catch {
        refuse(res, 400, 'Parse error')
        return
      }
      entry.body = body
    }
    const sessionId = req.headers['mcp-session-id']
    let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined
    if (transport === undefined) {
      if (sessionId !== undefined) {
        refuse(res, 404, 'Session not found')
        return
      }
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        refuse(res, 400, 'Bad Request: Mcp-Session-Id header is required')
        return
      }
      const mcp = buildDemoServer({
        jsonResponse,
        record,
        extraTools: (server) => {
          for (const name of grown) addTool(server, name)
          options.extraTools?.(server)
        },
        onGrow: (name) => {
          grown.add(name)
          for (const server of servers) addTool(server, name)
        }
      })
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        enableJsonResponse: jsonResponse,
        eventStore: options.resumable === true ? new DemoEventStore() : undefined,
        onsessioninitialized: (id) => { transports.set(id, created) },
        onsessionclosed: (id) => {
          transports.delete(id)
          record.closedSessions.push(id)
        }
      })
      created.onclose = () => {
        servers.delete(mcp)
      }
      servers.add(mcp)
      await mcp.connect(created)
      transport = created
    }
    await transport.handleRequest(req, res, body)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) refuse(res, 500, 'Internal error')
      else res.destroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve))
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address

  return {
    url: `http://${host}:${address.port}${path}`,
    server,
    record,
    sessionCount: () => transports.size,
    async close () {
      for (const mcp of servers) await mcp.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
