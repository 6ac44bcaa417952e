/**
 * Members' server-to-client requests (elicitation, sampling, roots) in one virtual session: each
 * goes to the client under an id of the gateway's (members' ids may clash), and the client's
 * answer goes back to the member that asked, under its own id. At most `MAX_ASKED` wait at once.
 */
import { errorResponse, INTERNAL_ERROR, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { MemberLink } from './member-link.ts'

/** Most server-to-client requests (from all members) waiting for the client's answer. */
const MAX_ASKED = 1000

export class MemberAsks {
  private readonly asked = new Map<string, { link: MemberLink, id: JsonRpcId }>()
  private next = 0
  private readonly server: string
  private readonly log: Logger
  private readonly emit: (message: JsonRpcMessage) => void

  constructor (server: string, log: Logger, emit: (message: JsonRpcMessage) => void) {
    this.server = server
    this.log = log
    this.emit = emit
  }

  /** A member's request, on to the client (a `ping` is answered here). */
  ask (link: MemberLink, request: JsonRpcRequest): void {
    if (request.method === 'ping') {
      void link.notify({ jsonrpc: '2.0', id: request.id, result: {} }).catch(() => {})
      return
    }
    if (this.asked.size >= MAX_ASKED) {
      void link.notify(errorResponse(request.id, INTERNAL_ERROR, `the client of virtual server ${this.server} has ${MAX_ASKED} requests unanswered`)).catch(() => {})
      return
    }
    const id = `vs${++this.next}`
    this.asked.set(id, { link, id: request.id })
    this.emit({ ...request, id })
  }

  /** The client's answer, back to the member that asked. */
  async answered (response: JsonRpcResponse): Promise<void> {
    const entry = this.asked.get(String(response.id))
    if (entry === undefined) return
    this.asked.delete(String(response.id))
    await entry.link.notify({ ...response, id: entry.id }).catch((err: unknown) => {
      this.log.debug({ upstream: this.server, member: entry.link.name, err }, 'virtual server: an answer to a member\'s request was lost')
    })
  }

  /** The member gave up one of its requests: the client hears it under the id it knows. */
  withdrawn (link: MemberLink, message: JsonRpcMessage & { params?: Record<string, unknown> }): void {
    for (const [id, entry] of this.asked) {
      if (entry.link !== link || entry.id !== message.params?.requestId) continue
      this.asked.delete(id)
      this.emit({ ...message, params: { ...message.params, requestId: id } } as JsonRpcMessage)
    }
  }

  /** The member has another session now: its requests are moot, and the client stops on them. */
  forget (link: MemberLink): void {
    for (const [id, entry] of this.asked) {
      if (entry.link !== link) continue
      this.asked.delete(id)
      // Nobody will take the client's answer: it stops asking (an elicitation dialog closes).
      this.emit({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: `upstream ${link.name} has a new session` } })
    }
  }
}
