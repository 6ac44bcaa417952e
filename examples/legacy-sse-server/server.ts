/**
 * The demo MCP server over the legacy HTTP+SSE transport (protocol 2024-11-05, the SDK's
 * deprecated SSEServerTransport): GET /sse opens a session's stream, whose `endpoint` event names
 * the URL the client POSTs its messages to. Old servers still speak only this.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js'
import { buildDemoServer } from '../demo-upstream/tools.ts'

export interface LegacySseServer {
  /** The SSE endpoint (what a gateway's `sse` upstream names). */
  url: string
  server: Server
  /** Open sessions. */
  sessionCount: () => number
  close: () => Promise<void>
}

export async function startLegacySseServer (port = 0): Promise<LegacySseServer> {
  const transports = new Map<string, SSEServerTransport>()
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res)
      transports.set(transport.sessionId, transport)
      const mcp = buildDemoServer()
      res.once('close', () => {
        transports.delete(transport.sessionId)
        void mcp.close()
      })
      mcp.connect(transport).catch(() => res.destroy())
      return
    }
    if (req.method === 'POST' && url.pathname === '/messages') {
      const transport = transports.get(url.searchParams.get('sessionId') ?? '')
      if (transport === undefined) {
        res.writeHead(404).end('Session not found')
        return
      }
      transport.handlePostMessage(req, res).catch(() => res.destroy())
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const address = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${address.port}/sse`,
    server,
    sessionCount: () => transports.size,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
