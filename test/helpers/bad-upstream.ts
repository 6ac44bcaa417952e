/**
 * An upstream that misbehaves on demand. The real SDK server cannot send garbage or cut a stream
 * mid-answer, so this one answers `initialize` properly and then does what `mode` says.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type BadMode = 'odd-session-id' | 'sse-long-line' | 'garbage-json' | 'html' | 'sse-end-early' | 'sse-reset' | 'sse-garbage' | 'sse-stray' | 'json-stray' | 'json-duplicate' | 'json-missing' | 'json-batch-missing' | 'http-500' | 'http-401' | 'http-404' | 'huge-json' | 'hang' | 'sse-held' | 'sse-id-end-early' | 'sse-resume-empty' | 'init-sse-lingers'

export interface BadUpstream {
  url: string
  mode: BadMode
  /** The bodies of the POSTs it received, in order. */
  seen: string[]
  /** `sse-resume-empty`: GETs that asked to resume a stream (`Last-Event-ID`). */
  resumes: number
  /** `sse-held`: answers waiting to be sent (each starts its SSE answer when called). */
  held: Array<() => void>
  close: () => Promise<void>
}

function idOf (body: string): unknown {
  try {
    return (JSON.parse(body) as { id?: unknown }).id
  } catch {
    return null
  }
}

/** The version the client asked for in `initialize`: this upstream speaks them all. */
function versionOf (body: string): string {
  try {
    const version = (JSON.parse(body) as { params?: { protocolVersion?: unknown } }).params?.protocolVersion
    return typeof version === 'string' ? version : '2025-11-25'
  } catch {
    return '2025-11-25'
  }
}

export async function badUpstream (t: { teardown (fn: () => unknown): void }, mode: BadMode): Promise<BadUpstream> {
  const state: BadUpstream = { url: '', mode, seen: [], resumes: 0, held: [], close: async () => {} }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      if (req.method === 'POST') state.seen.push(body)
      if (body.includes('"initialize"') && state.mode === 'init-sse-lingers') {
        // The answer as an SSE event, and the stream kept open after it until the test lets go.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'upstream-session-1' })
        res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: idOf(body), result: { protocolVersion: versionOf(body), capabilities: {}, serverInfo: { name: 'bad', version: '0' } } })}\n\n`)
        state.held.push(() => res.end())
        return
      }
      if (body.includes('"initialize"')) {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': state.mode === 'odd-session-id' ? 'has spaces, and é' : 'upstream-session-1' })
        res.end(JSON.stringify({ jsonrpc: '2.0', id: idOf(body), result: { protocolVersion: versionOf(body), capabilities: {}, serverInfo: { name: 'bad', version: '0' } } }))
        return
      }
      if (req.method === 'GET' && state.mode === 'sse-resume-empty' && req.headers['last-event-id'] !== undefined) {
        // Resumes every time, and every time ends at once with nothing more.
        state.resumes++
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.end()
        return
      }
      if (req.method !== 'POST' || !body.includes('"id"')) {
        res.writeHead(req.method === 'GET' ? 405 : 202)
        res.end()
        return
      }
      const id = idOf(body)
      const progress = `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`
      switch (state.mode) {
        case 'sse-long-line': {
          // One line that never ends: 17 MiB and counting.
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.write('data: ')
          const chunk = 'a'.repeat(1024 * 1024)
          let sent = 0
          const more = (): void => {
            while (sent < 17 && !res.destroyed) {
              sent++
              if (!res.write(chunk)) {
                res.once('drain', more)
                return
              }
            }
          }
          more()
          return
        }
        case 'garbage-json':
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end('{"jsonrpc": "2.0", "id": 1, "resu')
          return
        case 'html':
          res.writeHead(200, { 'content-type': 'text/html' })
          res.end('<html>proxy error</html>')
          return
        case 'sse-end-early':
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.end(progress)
          return
        case 'sse-resume-empty':
        case 'sse-id-end-early':
          // A resume point, then the end with nothing answered (a server that expects a resume).
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.end(`id: up-1\n${progress}`)
          return
        case 'sse-reset':
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.write(progress, () => setTimeout(() => res.destroy(), 20))
          return
        case 'sse-garbage':
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.write('data: not json\n\n')
          res.write('data: {"not":"jsonrpc"}\n\n')
          res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { ok: true } })}\n\n`)
          return
        case 'sse-stray': {
          // A response to a request nobody sent, the real one, then the real one again.
          const answer = `data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { ok: true } })}\n\n`
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: 'nobody', result: { stray: true } })}\n\n`)
          res.write(answer)
          res.end(answer)
          return
        }
        case 'json-stray':
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify([{ jsonrpc: '2.0', id: 'nobody', result: { stray: true } }, { jsonrpc: '2.0', id, result: { ok: true } }]))
          return
        case 'json-duplicate':
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify([{ jsonrpc: '2.0', id, result: { ok: true } }, { jsonrpc: '2.0', id, result: { again: true } }]))
          return
        case 'json-missing':
          // Only a response to a request nobody sent: the real one is missing.
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ jsonrpc: '2.0', id: 'nobody', result: { stray: true } }))
          return
        case 'json-batch-missing': {
          // A batch of requests: only the first is answered.
          const ids = [JSON.parse(body) as { id?: unknown } | Array<{ id?: unknown }>].flat().map((m) => m.id)
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify([{ jsonrpc: '2.0', id: ids[0], result: { ok: true } }]))
          return
        }
        case 'http-500':
          res.writeHead(500, { 'content-type': 'text/plain' })
          res.end('boom')
          return
        case 'http-401':
          res.writeHead(401, { 'www-authenticate': 'Bearer resource_metadata="https://upstream.example/.well-known/oauth-protected-resource"' })
          res.end()
          return
        case 'http-404':
          res.writeHead(404, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }))
          return
        case 'huge-json':
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { pad: 'x'.repeat(4096) } }))
          return
        case 'hang':
          return
        case 'init-sse-lingers':
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { tools: [] } }))
          return
        case 'sse-held':
          if (body.includes('"server/discover"')) {
            res.writeHead(200, { 'content-type': 'application/json' })
            res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32601, message: 'Method not found' } }))
            return
          }
          // Nothing, not even headers, until the test says: the answer starts late.
          state.held.push(() => {
            res.writeHead(200, { 'content-type': 'text/event-stream' })
            res.write(progress)
            res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { ok: true } })}\n\n`)
          })
          return
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
  state.close = async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(() => state.close())
  return state
}
