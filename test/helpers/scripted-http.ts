/**
 * The scripted peer (scripted-peer.mjs) over HTTP: Streamable HTTP answering each request with an
 * SSE stream or a JSON body, and legacy HTTP+SSE (2024-11-05: one GET stream, POSTs to its
 * endpoint). Real servers on 127.0.0.1; what each does is the peer's, not the transport's.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

type Message = { id?: string | number, method?: string, params?: Record<string, unknown>, result?: unknown }
interface Peer {
  cancels: Array<{ requestId: unknown, reason: unknown }>
  handle: (message: Message) => void
}
type PeerFactory = (send: (message: Message, forId?: unknown) => void, crash: () => void) => Peer

const peerModule = new URL('./scripted-peer.mjs', import.meta.url).href
export const scriptedPeerScript = new URL(peerModule).pathname

async function factory (): Promise<PeerFactory> {
  return ((await import(peerModule)) as { scriptedPeer: PeerFactory }).scriptedPeer
}

export interface ScriptedServer {
  url: string
  /** Resolves once a `tools/call` of `tool` has arrived. */
  heard: (tool: string) => Promise<void>
  close: () => Promise<void>
}

/** Who waits for which tool's call to arrive. */
class Ears {
  private readonly waiting = new Map<string, Array<() => void>>()
  private readonly arrived = new Set<string>()

  hear (message: Message): void {
    const name = message.method === 'tools/call' ? message.params?.name : undefined
    if (typeof name !== 'string') return
    this.arrived.add(name)
    for (const resolve of this.waiting.get(name) ?? []) resolve()
    this.waiting.delete(name)
  }

  heard = async (tool: string): Promise<void> => {
    if (this.arrived.has(tool)) return
    await new Promise<void>((resolve) => { this.waiting.set(tool, [...this.waiting.get(tool) ?? [], resolve]) })
  }
}

async function body (req: IncomingMessage): Promise<string> {
  let text = ''
  req.setEncoding('utf8')
  for await (const chunk of req) text += chunk as string
  return text
}

async function listen (server: Server, path: string, ears: Ears): Promise<ScriptedServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}${path}`,
    heard: ears.heard,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** Streamable HTTP, one session: each request's messages on its POST's SSE stream, or as one JSON body. */
export async function scriptedStreamableHttp (answers: 'sse' | 'json'): Promise<ScriptedServer> {
  const scriptedPeer = await factory()
  const ears = new Ears()
  /** Open answers: request id -> what its messages go to. */
  const open = new Map<unknown, { res: ServerResponse, queued: Message[], closing: boolean }>()
  const peer = scriptedPeer((message, forId) => {
    const answer = open.get(forId)
    if (answer === undefined) return
    const done = message.method === undefined && message.id === forId
    if (answers === 'sse') {
      answer.res.write(`data: ${JSON.stringify(message)}\n\n`)
    } else {
      answer.queued.push(message)
    }
    if (!done || answer.closing) return
    answer.closing = true
    // A duplicate sent right after the result goes in the same body, or on the same stream.
    setImmediate(() => {
      if (open.get(forId) === answer) open.delete(forId)
      if (answers === 'sse') {
        answer.res.end()
        return
      }
      const out = answer.queued.length === 1 ? answer.queued[0] : answer.queued
      answer.res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out))
    })
  }, () => {
    for (const { res } of open.values()) res.socket?.destroy()
    open.clear()
  })
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'DELETE') return res.writeHead(200).end()
      if (req.method !== 'POST') return res.writeHead(405).end()
      const message = JSON.parse(await body(req)) as Message
      ears.hear(message)
      if (message.method === 'initialize') {
        res.setHeader('mcp-session-id', 'scripted-1')
      }
      if (message.id === undefined || message.method === undefined) {
        res.writeHead(202).end()
        peer.handle(message)
        return
      }
      if (answers === 'sse') res.writeHead(200, { 'content-type': 'text/event-stream' })
      open.set(message.id, { res, queued: [], closing: false })
      peer.handle(message)
    })()
  })
  return await listen(server, '/mcp', ears)
}

/** Legacy HTTP+SSE: everything the peer sends goes on the one GET stream. */
export async function scriptedLegacySse (): Promise<ScriptedServer> {
  const scriptedPeer = await factory()
  const ears = new Ears()
  let stream: ServerResponse | undefined
  const peer = scriptedPeer((message) => {
    stream?.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`)
  }, () => { stream?.socket?.destroy() })
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET' && req.url === '/sse') {
        stream = res
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('event: endpoint\ndata: /messages?sessionId=legacy-1\n\n')
        return
      }
      if (req.method !== 'POST') return res.writeHead(405).end()
      const message = JSON.parse(await body(req)) as Message
      ears.hear(message)
      res.writeHead(202).end()
      peer.handle(message)
    })()
  })
  return await listen(server, '/sse', ears)
}
