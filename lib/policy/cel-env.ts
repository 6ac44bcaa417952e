/**
 * The CEL environment policy rules are checked and run in: the declared variables and their types
 * (README "Policy"), and one function of the gateway's own, `glob` (the linear-time globs of
 * lib/glob.ts, as `tool.name.glob("delete_*")`). Values are passed as instances of the registered
 * classes, so evaluation converts nothing.
 */
import { Environment } from '@marcbachmann/cel-js'
import { glob } from './analysis.ts'

/** `principal`: who calls (inbound auth); with auth off, id "" and no scopes. */
export class PolicyPrincipal {
  id: string
  /** How the caller was authenticated: "api-key", "jwt", or "" with auth off. */
  kind: string
  scopes: string[]
  /** A JWT's claims (empty for API keys). */
  claims: Record<string, unknown>
  constructor (id: string, kind: string, scopes: string[], claims: Record<string, unknown>) {
    this.id = id
    this.kind = kind
    this.scopes = scopes
    this.claims = claims
  }
}

/** `upstream`: the endpoint's upstream; behind a virtual server, `member` names the one serving. */
export class PolicyUpstream {
  name: string
  /** streamable-http, stdio, sse or virtual. */
  kind: string
  /** The protocol era it speaks: "2025", "2026", or "" when not yet known. */
  era: string
  /** The member upstream a virtual server routes this tool or prompt to; "" otherwise. */
  member: string
  constructor (name: string, kind: string, era: string, member: string) {
    this.name = name
    this.kind = kind
    this.era = era
    this.member = member
  }
}

/** A tool's annotations as its upstream declared them; where it declared none, the spec's defaults. */
export class PolicyAnnotations {
  readOnlyHint: boolean
  destructiveHint: boolean
  idempotentHint: boolean
  openWorldHint: boolean
  constructor (declared: Record<string, unknown> | undefined) {
    this.readOnlyHint = typeof declared?.readOnlyHint === 'boolean' ? declared.readOnlyHint : false
    this.destructiveHint = typeof declared?.destructiveHint === 'boolean' ? declared.destructiveHint : true
    this.idempotentHint = typeof declared?.idempotentHint === 'boolean' ? declared.idempotentHint : false
    this.openWorldHint = typeof declared?.openWorldHint === 'boolean' ? declared.openWorldHint : true
  }
}

/** `tool`: the tool of a `tools/call` (or of a `tools/list` entry); name "" for other methods. */
export class PolicyTool {
  /** The name the client uses (a virtual server's exposed name). */
  name: string
  /** The upstream's own name for it (the same as `name` outside virtual servers). */
  ownName: string
  annotations: PolicyAnnotations
  constructor (name: string, ownName: string, annotations: PolicyAnnotations) {
    this.name = name
    this.ownName = ownName
    this.annotations = annotations
  }
}

export class PolicyResource {
  uri: string
  constructor (uri: string) { this.uri = uri }
}

export class PolicyPrompt {
  name: string
  constructor (name: string) { this.name = name }
}

/** `session`: the MCP session (2025); for a stateless 2026-07-28 request, id "" and age 0. */
export class PolicySession {
  id: string
  /** "2025" or "2026". */
  era: string
  /** Seconds since the session opened. */
  age: bigint
  constructor (id: string, era: string, age: bigint) {
    this.id = id
    this.era = era
    this.age = age
  }
}

/** Everything a rule may read, one request's worth. */
export interface PolicyInput {
  principal: PolicyPrincipal
  upstream: PolicyUpstream
  method: string
  tool: PolicyTool
  /** The request's `params.arguments` (tools/call), else empty. */
  arguments: Record<string, unknown>
  resource: PolicyResource
  prompt: PolicyPrompt
  /** Request headers, lower-cased, without credentials (README lists what is left out). */
  headers: Record<string, string>
  session: PolicySession
  now: Date
}

export const POLICY_VARIABLES = ['principal', 'upstream', 'method', 'tool', 'arguments', 'resource', 'prompt', 'headers', 'session', 'now'] as const

function environment (): Environment {
  return new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false })
    .registerType('mcp.Principal', { ctor: PolicyPrincipal, fields: { id: 'string', kind: 'string', scopes: 'list<string>', claims: 'map<string, dyn>' } })
    .registerType('mcp.Upstream', { ctor: PolicyUpstream, fields: { name: 'string', kind: 'string', era: 'string', member: 'string' } })
    .registerType('mcp.Annotations', { ctor: PolicyAnnotations, fields: { readOnlyHint: 'bool', destructiveHint: 'bool', idempotentHint: 'bool', openWorldHint: 'bool' } })
    .registerType('mcp.Tool', { ctor: PolicyTool, fields: { name: 'string', ownName: 'string', annotations: 'mcp.Annotations' } })
    .registerType('mcp.Resource', { ctor: PolicyResource, fields: { uri: 'string' } })
    .registerType('mcp.Prompt', { ctor: PolicyPrompt, fields: { name: 'string' } })
    .registerType('mcp.Session', { ctor: PolicySession, fields: { id: 'string', era: 'string', age: 'int' } })
    .registerVariable('principal', 'mcp.Principal')
    .registerVariable('upstream', 'mcp.Upstream')
    .registerVariable('method', 'string')
    .registerVariable('tool', 'mcp.Tool')
    .registerVariable('arguments', 'map<string, dyn>')
    .registerVariable('resource', 'mcp.Resource')
    .registerVariable('prompt', 'mcp.Prompt')
    .registerVariable('headers', 'map<string, string>')
    .registerVariable('session', 'mcp.Session')
    .registerVariable('now', 'google.protobuf.Timestamp')
    .registerFunction('string.glob(string): bool', glob)
}

/** One environment for the process: compiling a policy (or reloading one) reuses it. */
let shared: Environment | undefined

export function celEnvironment (): Environment {
  shared ??= environment()
  return shared
}
