/**
 * One exchange's audited requests (a POST body, a WebSocket frame): a record each, begun when the
 * request arrives and queued when it ends, by its answer (from the upstream or made here), by an
 * interceptor dropping it, or with the exchange (failed, timed out, or the client left).
 */
import { isRequest, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import type { MemberName } from '../upstream/types.ts'
import type { AuditLog } from './log.ts'
import type { AuditOutcome, AuditRecord } from './record.ts'

export interface AuditScope {
  principal: string | undefined
  session: string | undefined
  upstream: string
  memberOf: ((kind: 'tools' | 'prompts', exposed: string) => MemberName | undefined) | undefined
}

interface Open {
  record: AuditRecord
  /** The request as it went on (an interceptor may have rewritten it): the policy decided on it. */
  request: JsonRpcRequest
  args: unknown
  started: number
}

/** Codes for a request refused here before it left (blocked, unauthorized, rate-limited). */
const REFUSED_HERE = new Set([-32055, -32057, -32058, -32059, -32069])
const TIMED_OUT = -32061
/** The gateway's codes for an upstream that failed the request. */
const UPSTREAM_FAILED = { from: -32079, to: -32060 }

export class ExchangeAudit {
  private readonly log: AuditLog
  private readonly open = new Map<JsonRpcId, Open>()

  private constructor (log: AuditLog) {
    this.log = log
  }

  /** The exchange's audit, or undefined when none of its messages is an audited request. */
  static begin (log: AuditLog, messages: readonly JsonRpcMessage[], scope: AuditScope): ExchangeAudit | undefined {
    let audit: ExchangeAudit | undefined
    for (const message of messages) {
      if (!isRequest(message) || !log.audits(message.method) || audit?.open.has(message.id) === true) continue
      audit ??= new ExchangeAudit(log)
      audit.open.set(message.id, opened(message, scope))
    }
    return audit
  }

  /** What the interceptors let go on: an audited request not among it was dropped by one. */
  sent (forward: readonly JsonRpcMessage[]): void {
    const went = new Map<JsonRpcId, JsonRpcRequest>()
    for (const message of forward) if (isRequest(message)) went.set(message.id, message)
    for (const [id, entry] of this.open) {
      const request = went.get(id)
      if (request !== undefined) entry.request = request
      else this.end(id, entry, 'denied', undefined)
    }
  }

  /** An answer for the client: the first to an audited request decides its outcome. */
  readonly answered = (message: JsonRpcMessage): void => {
    if (this.open.size === 0 || !('id' in message) || 'method' in message || message.id === null) return
    const entry = this.open.get(message.id)
    if (entry === undefined) return
    const { error, result } = message as { error?: { code: number, message: string, data?: unknown }, result?: { isError?: unknown } }
    if (error === undefined) {
      this.end(message.id, entry, result?.isError === true ? 'error' : 'ok', undefined)
      return
    }
    const fields = { code: error.code, message: error.message }
    if (error.code === -32055 && entry.record.decision === null) {
      // Denied by a rule the decisions map did not see (a rewritten request): its data names it.
      const rule = (error.data as { rule?: unknown } | undefined)?.rule
      if (typeof rule === 'string') entry.record.rule = rule
    }
    this.end(message.id, entry, outcomeOf(error.code), fields)
  }

  /** The exchange is over: what has no answer yet ends as `outcome`. */
  close (outcome: AuditOutcome, error?: { code: number, message: string }): void {
    for (const [id, entry] of this.open) this.end(id, entry, outcome, error)
  }

  private end (id: JsonRpcId, entry: Open, outcome: AuditOutcome, error: { code: number, message: string } | undefined): void {
    this.open.delete(id)
    const { record } = entry
    const decided = this.log.policy ? this.log.decided(entry.request) : undefined
    if (decided !== undefined) {
      record.decision = decided.effect
      record.rule = decided.rule
      if (decided.approval !== undefined) {
        record.approval = decided.approval
        record.approver = decided.approver ?? null
      }
    }
    record.durationMs = Math.round((performance.now() - entry.started) * 1000) / 1000
    record.outcome = outcome
    if (error !== undefined) record.error = error
    this.log.add(record, entry.args)
  }
}

function outcomeOf (code: number): AuditOutcome {
  if (REFUSED_HERE.has(code)) return 'denied'
  if (code === TIMED_OUT) return 'timeout'
  if (code >= UPSTREAM_FAILED.from && code <= UPSTREAM_FAILED.to) return 'failed'
  return 'error'
}

/** A request's record as it arrives; the fields its end fills are placed now, so they keep their order. */
function opened (request: JsonRpcRequest, scope: AuditScope): Open {
  const params = (request.params ?? {}) as { name?: unknown, uri?: unknown, arguments?: unknown }
  const record: AuditRecord = { time: new Date().toISOString(), type: 'request', method: request.method, principal: scope.principal ?? null, session: scope.session ?? null, upstream: scope.upstream }
  let args: unknown
  if (request.method === 'tools/call' || request.method === 'prompts/get') {
    const kind = request.method === 'tools/call' ? 'tools' : 'prompts'
    if (typeof params.name === 'string') {
      const member = scope.memberOf?.(kind, params.name)
      if (member !== undefined) record.member = member
      if (kind === 'tools') record.tool = params.name
      else record.prompt = params.name
    }
    args = params.arguments ?? {}
    // Filled when written, off the request path.
    record.argumentsDigest = undefined
    record.arguments = undefined
  } else if (typeof params.uri === 'string') {
    record.resource = params.uri
  }
  record.decision = null
  record.rule = null
  record.approval = null
  record.approver = null
  record.durationMs = 0
  record.outcome = 'ok'
  return { record, request, args, started: performance.now() }
}
