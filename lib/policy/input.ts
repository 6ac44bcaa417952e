/**
 * One request's policy variables, from what the interceptor chain knows of it: who, which
 * upstream (and behind a virtual server which member), the method and what it names, its
 * headers less anything secret, its session, and the time.
 */
import type { InterceptorContext } from '../interceptors/chain.ts'
import type { JsonRpcRequest } from '../jsonrpc.ts'
import { isStatelessVersion } from '../protocol.ts'
import { PolicyAnnotations, PolicyPrincipal, PolicyPrompt, PolicyResource, PolicySession, PolicyTool, PolicyUpstream, type PolicyInput } from './cel-env.ts'

/**
 * Headers never shown to rules: credentials under any common name (an API key header of any name
 * holding "key" or "auth", identity-aware proxies' JWT assertions, a browser WebSocket's token in
 * its subprotocol list) and session ids (a rule has `session.id`).
 */
const SECRET_HEADER = /auth|cookie|token|secret|passw|key|session-id|jwt|assertion|credential|signature|sec-websocket-protocol/i

const NO_PRINCIPAL = new PolicyPrincipal('', '', [], {})
const NO_RESOURCE = new PolicyResource('')
const NO_PROMPT = new PolicyPrompt('')
const DEFAULT_ANNOTATIONS = new PolicyAnnotations(undefined)
const NO_ARGUMENTS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>

/** Header names seen, and whether each is secret: names repeat, the pattern need not run per request. */
const secretNames = new Map<string, boolean>()

function secret (name: string): boolean {
  let known = secretNames.get(name)
  if (known === undefined) {
    known = SECRET_HEADER.test(name)
    if (secretNames.size >= 1000) secretNames.clear()
    secretNames.set(name, known)
  }
  return known
}

export function policyHeaders (headers: InterceptorContext['headers']): Record<string, string> {
  const out: Record<string, string> = {}
  if (headers === undefined) return out
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || secret(name)) continue
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

export function policyPrincipal (principal: InterceptorContext['principal']): PolicyPrincipal {
  if (principal === undefined) return NO_PRINCIPAL
  return new PolicyPrincipal(principal.id, principal.method, principal.scopes, principal.claims ?? {})
}

export function policySession (ctx: Pick<InterceptorContext, 'session'>, now: number): PolicySession {
  const session = ctx.session
  if (session === undefined) return new PolicySession('', '2026', 0n)
  const era = isStatelessVersion(session.protocolVersion) ? '2026' : '2025'
  return new PolicySession(session.id, era, BigInt(Math.max(0, Math.floor((now - session.createdAt) / 1000))))
}

/** What a tool, prompt or resource a request (or a list entry) names is, for the rules. */
export interface Named {
  tool?: { name: string, annotations: Record<string, unknown> | PolicyAnnotations | undefined }
  prompt?: string
  resource?: string
}

/** What every request (or every entry of one list) of a context shares. */
export type PolicyBase = Pick<PolicyInput, 'principal' | 'headers' | 'session' | 'now'>

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>

/** `withHeaders`: whether any rule reads `headers` (copying them is the dearest part, and often idle). */
export function policyBase (ctx: InterceptorContext, withHeaders: boolean): PolicyBase {
  const now = Date.now()
  return { principal: policyPrincipal(ctx.principal), headers: withHeaders ? policyHeaders(ctx.headers) : NO_HEADERS, session: policySession(ctx, now), now: new Date(now) }
}

/** The variables for `method` naming `named`, in the context of `ctx`. */
export function policyInput (ctx: InterceptorContext, base: PolicyBase, method: string, named: Named, args: Record<string, unknown> | undefined): PolicyInput {
  const exposed = named.tool?.name ?? named.prompt
  const member = exposed === undefined ? undefined : ctx.memberOf?.(named.tool !== undefined ? 'tools' : 'prompts', exposed)
  const endpoint = ctx.endpoint
  const upstream = new PolicyUpstream(ctx.upstream, endpoint?.kind ?? '', endpoint?.era ?? '', member?.upstream ?? '')
  let tool: PolicyTool
  if (named.tool === undefined) tool = new PolicyTool('', '', DEFAULT_ANNOTATIONS)
  else {
    const given = named.tool.annotations
    const annotations = given instanceof PolicyAnnotations ? given : given === undefined ? DEFAULT_ANNOTATIONS : new PolicyAnnotations(given)
    tool = new PolicyTool(named.tool.name, member?.name ?? named.tool.name, annotations)
  }
  // Written out, not spread from `base`: V8 builds a spread-plus-six-keys literal on a slow path
  // (microseconds per request, measured).
  return {
    principal: base.principal,
    headers: base.headers,
    session: base.session,
    now: base.now,
    upstream,
    method,
    tool,
    arguments: args ?? NO_ARGUMENTS,
    resource: named.resource === undefined ? NO_RESOURCE : new PolicyResource(named.resource),
    prompt: named.prompt === undefined ? NO_PROMPT : new PolicyPrompt(named.prompt)
  }
}

/** What a request names, by method (`params.name`, `params.uri`, a completion's `ref`). */
export function namedBy (request: JsonRpcRequest, annotationsOf: (tool: string) => PolicyAnnotations | undefined): Named {
  const params = request.params
  if (params === undefined) return {}
  switch (request.method) {
    case 'tools/call':
      return typeof params.name === 'string' ? { tool: { name: params.name, annotations: annotationsOf(params.name) } } : {}
    case 'prompts/get':
      return typeof params.name === 'string' ? { prompt: params.name } : {}
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return typeof params.uri === 'string' ? { resource: params.uri } : {}
    case 'completion/complete': {
      const ref = params.ref as { type?: unknown, name?: unknown, uri?: unknown } | undefined
      if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') return { prompt: ref.name }
      if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') return { resource: ref.uri }
      return {}
    }
    default:
      return {}
  }
}

export function argumentsOf (request: JsonRpcRequest): Record<string, unknown> | undefined {
  const args = request.params?.arguments
  return args !== null && typeof args === 'object' && !Array.isArray(args) ? args as Record<string, unknown> : undefined
}
