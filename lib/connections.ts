/**
 * Tracks a Node HTTP server's sockets and their requests in flight, so shutdown can end every
 * socket that is not serving a request. Node's own `closeIdleConnections()` skips sockets that
 * never sent a request, and clients open those: Node's fetch pre-connects a spare socket after an
 * aborted stream. Without this, `server.close()` waits on such a socket forever.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

const kInFlight = Symbol('mcpGatewayInFlight')
const kSocket = Symbol('mcpGatewaySocket')

type TrackedSocket = Socket & { [kInFlight]?: number }
type TrackedResponse = ServerResponse & { [kSocket]?: TrackedSocket }

/**
 * Marks a socket as busy for good: an upgraded (WebSocket) connection never sends a request the
 * tracker would see, and is closed by its own protocol, not as an idle HTTP socket.
 */
export function markUpgraded (socket: Socket): void {
  const tracked = socket as TrackedSocket
  tracked[kInFlight] = (tracked[kInFlight] ?? 0) + 1
}

export class ConnectionTracker {
  private readonly sockets = new Set<TrackedSocket>()
  private closing = false

  constructor (server: Server) {
    const sockets = this.sockets
    const tracker = this
    server.on('connection', (socket: TrackedSocket) => {
      socket[kInFlight] = 0
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    // One shared listener, no closure per request: this sits on every request's path.
    function onResponseClose (this: TrackedResponse): void {
      const socket = this[kSocket]
      if (socket === undefined) return
      socket[kInFlight] = (socket[kInFlight] ?? 1) - 1
      if (tracker.closing && socket[kInFlight] === 0) socket.destroySoon()
    }
    server.on('request', (req: IncomingMessage, res: TrackedResponse) => {
      const socket = req.socket as TrackedSocket
      socket[kInFlight] = (socket[kInFlight] ?? 0) + 1
      res[kSocket] = socket
      res.once('close', onResponseClose)
    })
  }

  /** Open sockets. */
  get size (): number {
    return this.sockets.size
  }

  /**
   * Ends every socket with no request in flight after `graceMs`, and each other one as its last
   * response ends. The grace is for a request already on its way on an idle socket: it is read and
   * answered (503 while closing, so a load balancer tries another instance) instead of being lost
   * to a connection reset.
   */
  async closeIdle (graceMs = 0): Promise<void> {
    this.closing = true
    if (graceMs > 0) await new Promise((resolve) => setTimeout(resolve, graceMs))
    for (const socket of this.sockets) {
      if (socket[kInFlight] === 0) socket.destroySoon()
    }
  }
}
