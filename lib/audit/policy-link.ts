/**
 * The policy's decisions into the audit log: an audited request's record carries the decision and
 * the rule that made it; a denied request of any other method gets a record of its own (a denial
 * is always worth one: who tried what, and which rule stopped it).
 */
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import type { InterceptorContext } from '../interceptors/chain.ts'
import type { JsonRpcRequest } from '../jsonrpc.ts'
import type { PolicyGate } from '../policy/gate.ts'
import type { Effect } from '../policy/policy.ts'
import type { AuditLog } from './log.ts'

export function linkPolicy (gate: PolicyGate, audit: AuditLog): void {
  audit.policy = true
  gate.onDecision = (request, ctx, effect, rule, reason) => {
    if (audit.audits(request.method)) audit.decisions.set(request, { effect, rule })
    else if (effect === 'deny') audit.add(denial(request, ctx, effect, rule, reason))
  }
  gate.onApproval = (request, decision) => {
    const decided = audit.decisions.get(request)
    if (decided === undefined) return
    decided.approval = decision.outcome
    decided.approver = decision.by
  }
}

function denial (request: JsonRpcRequest, ctx: InterceptorContext, effect: Effect, rule: string, reason: string | undefined): Parameters<AuditLog['add']>[0] {
  const { code, message } = toJsonRpcError(new GatewayErrors.BLOCKED(reason ?? 'denied by the policy')).body.error
  return {
    time: new Date().toISOString(),
    type: 'request',
    method: request.method,
    principal: ctx.principal?.id ?? null,
    session: ctx.session?.id ?? null,
    upstream: ctx.upstream,
    decision: effect,
    rule,
    approval: null,
    approver: null,
    durationMs: 0,
    outcome: 'denied',
    error: { code, message }
  }
}
