/**
 * A decision taken outside a running gateway, for an operator testing a policy before deploying
 * it (`fastify-mcp-gateway policy test`): the same input building and the same evaluation as the
 * gateway's, with every rule's result beside the one that decided.
 */
import type { InterceptorContext } from '../interceptors/chain.ts'
import type { JsonRpcRequest } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { UpstreamKind } from '../upstream/types.ts'
import { PolicyAnnotations } from './cel-env.ts'
import { argumentsOf, namedBy, policyBase, policyInput } from './input.ts'
import type { Decision, Policy } from './policy.ts'

export interface ExplainContext {
  upstream: string
  kind?: UpstreamKind
  principal?: { id: string, kind?: 'api-key' | 'jwt', scopes?: string[], claims?: Record<string, unknown> }
  headers?: Record<string, string>
  /** The called tool's annotations, as its upstream declares them. */
  annotations?: Record<string, unknown>
  /** The client's era: 2025 (a fresh session) or 2026 (stateless, no session). @default '2025' */
  era?: '2025' | '2026'
  /** The endpoint's upstream era, when known. */
  upstreamEra?: '2025' | '2026'
  log: Logger
}

export function explain (policy: Policy, request: JsonRpcRequest, context: ExplainContext): Decision {
  const principal = context.principal
  const ctx: InterceptorContext = {
    direction: 'client_to_upstream',
    kind: 'request',
    session: context.era === '2026' ? undefined : { id: 'explain', upstream: context.upstream, upstreamSessionId: null, protocolVersion: '2025-11-25', createdAt: Date.now(), lastSeenAt: Date.now() },
    principal: principal === undefined ? undefined : { id: principal.id, method: principal.kind ?? 'jwt', scopes: principal.scopes ?? [], claims: principal.claims ?? {} },
    upstream: context.upstream,
    headers: context.headers,
    endpoint: context.kind === undefined ? undefined : { kind: context.kind, era: context.upstreamEra },
    config: undefined,
    log: context.log,
    request: undefined
  }
  const annotations = new PolicyAnnotations(context.annotations)
  const named = namedBy(request, () => annotations)
  return policy.decide(policyInput(ctx, policyBase(ctx, true), request.method, named, request.method === 'tools/call' ? argumentsOf(request) : undefined), true)
}

/** The decision as the command prints it. */
export function explainText (decision: Decision): string {
  const lines = [`decision: ${decision.effect}`]
  const rule = decision.rule
  lines.push(rule === undefined ? 'decided by: the default (no rule held)' : `decided by: ${rule.name} (${rule.effect})${rule.message === undefined ? '' : `: ${rule.message}`}`)
  lines.push('rules:')
  for (const result of decision.results ?? []) {
    const outcome = result.error === undefined ? String(result.result) : `error (${result.error.split('\n')[0] ?? ''}): counts as ${String(result.result)}`
    lines.push(`  ${result.effect.padEnd(5)}  ${result.name}: ${outcome}`)
  }
  return lines.join('\n') + '\n'
}
