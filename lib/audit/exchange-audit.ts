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
  /** Wall clock at arrival (ms): the record's `time`. */
  at: number
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
    this.log.add(record, entry.args, entry.at)
  }
}

function outcomeOf (code: number): AuditOutcome {
  if (REFUSED_HERE.has(code)) return 'denied'
  if (code === TIMED_OUT) return 'timeout'
  if (code >= UPSTREAM_FAILED.from && code <= UPSTREAM_FAILED.to) return 'failed'
  return 'error'
}

/**
 * A request's record as it arrives, written as one literal: every record has the same shape (one
 * hidden class; fields it lacks stay undefined, which JSON leaves out) and the fields its end and
 * its write fill are in their places. Its time is the wall clock now, made into text when written.
 */
function opened (request: JsonRpcRequest, scope: AuditScope): Open {
  const params = (request.params ?? {}) as { name?: unknown, uri?: unknown, arguments?: unknown }
  const method = request.method
  const named = method === 'tools/call' || method === 'prompts/get'
  const name = named && typeof params.name === 'string' ? params.name : undefined
  const record: AuditRecord = {
    time: '',
    type: 'request',
    method,
    principal: scope.principal ?? null,
    session: scope.session ?? null,
    upstream: scope.upstream,
    member: name === undefined ? undefined : scope.memberOf?.(method === 'tools/call' ? 'tools' : 'prompts', name),
    tool: method === 'tools/call' ? name : undefined,
    prompt: method === 'prompts/get' ? name : undefined,
    resource: !named && typeof params.uri === 'string' ? params.uri : undefined,
    argumentsDigest: undefined,
    arguments: undefined,
    decision: null,
    rule: null,
    approval: null,
    approver: null,
    durationMs: 0,
    outcome: 'ok',
    error: undefined
  }
  return { record, request, args: named ? params.arguments ?? {} : undefined, started: performance.now(), at: Date.now() }
}
