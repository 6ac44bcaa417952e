/**
 * `fastify-mcp-gateway policy test --config FILE --request JSON [--principal JSON] [...]`: what
 * the gateway's policy would decide for one request, and each rule's result. FILE is a gateway
 * config (its `policy`, with `auth.tools` as the rule they are shorthand for) or a policy file
 * (`{ default?, rules }`). Exit code 0: allowed; 2: denied; 1: the command could not run.
 */
import { parseArgs } from 'node:util'
import { checkToolRules, toolRulesAsPolicy } from '../../lib/auth/tool-rules.ts'
import { isPlainObject, invalid, parseOptions } from '../../lib/options.ts'
import { explain, explainText, type ExplainContext } from '../../lib/policy/explain.ts'
import { compiled, readPolicyFile } from '../../lib/policy/file.ts'
import { Policy, type PolicyRule, type PolicySpec } from '../../lib/policy/policy.ts'
import { policyFileSchema } from '../../lib/policy/spec-schema.ts'
import type { JsonRpcRequest } from '../../lib/jsonrpc.ts'
import type { UpstreamKind } from '../../lib/upstream/types.ts'
import { expandEnvironment, readConfigFile } from './config.ts'

export const POLICY_USAGE = `Usage: fastify-mcp-gateway policy test --config FILE --request JSON [options]

  --config FILE       gateway config (its "policy" and "auth.tools") or a policy file
  --request JSON      the JSON-RPC request, e.g. {"method":"tools/call","params":{"name":"x","arguments":{}}}
  --principal JSON    who sends it: {"id":"alice","scopes":["read"],"claims":{"team":"a"}} (default: nobody)
  --upstream NAME     the upstream it goes to (default: the config's upstream, else "upstream")
  --headers JSON      request headers, e.g. {"mcp-method":"tools/call"}
  --annotations JSON  the called tool's annotations, e.g. {"readOnlyHint":true}
  --era 2025|2026     the client's protocol era (2025: in a fresh session; 2026: stateless), default 2025

Exit code: 0 allowed, 2 denied, 1 the command could not run.
`

function json (flag: string, text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw invalid(flag, `is not JSON (${(err as Error).message})`)
  }
}

function object (flag: string, text: string | undefined): Record<string, unknown> | undefined {
  const value = json(flag, text)
  if (value !== undefined && !isPlainObject(value)) throw invalid(flag, 'must be a JSON object')
  return value
}

interface Target { name: string | undefined, kind: UpstreamKind | undefined, era: '2025' | '2026' | undefined }

/** The config's (first) upstream: its name, kind and era, for the rules that read them. */
function targetOf (config: Record<string, unknown>): Target {
  const entry = isPlainObject(config.upstream) ? config.upstream : Array.isArray(config.upstreams) && isPlainObject(config.upstreams[0]) ? config.upstreams[0] : undefined
  if (entry === undefined) return { name: undefined, kind: typeof config.upstream === 'string' ? 'streamable-http' : undefined, era: undefined }
  const kind = typeof entry.kind === 'string' ? entry.kind as UpstreamKind : 'streamable-http'
  const era = entry.protocol === '2025' || entry.protocol === '2026' ? entry.protocol : kind === 'stdio' || kind === 'sse' ? '2025' : undefined
  return { name: typeof entry.name === 'string' ? entry.name : undefined, kind, era }
}

/** The policy a config file puts in force (auth.tools first, as the gateway's own gate), and its upstream. */
async function policyOf (file: string): Promise<{ policy: Policy, upstream: Target }> {
  const config = expandEnvironment(await readConfigFile(file), process.env)
  if (Array.isArray(config.rules)) return { policy: compiled(() => new Policy(parseOptions(policyFileSchema, `policy file ${file}`, config)), `policy file ${file}`), upstream: { name: undefined, kind: undefined, era: undefined } }
  const section = isPlainObject(config.policy) ? config.policy : {}
  let spec: PolicySpec
  if (typeof section.file === 'string') {
    const fromFile = readPolicyFile(section.file).policy
    spec = { default: fromFile.default, rules: [...fromFile.rules] }
  }
  else spec = parseOptions(policyFileSchema, 'policy', { ...(section.default === undefined ? {} : { default: section.default }), rules: section.rules ?? [] })
  const tools = checkToolRules(isPlainObject(config.auth) ? config.auth.tools : undefined)
  const rules: PolicyRule[] = tools.length > 0 ? [toolRulesAsPolicy(tools), ...spec.rules] : spec.rules
  return { policy: compiled(() => new Policy({ default: spec.default, rules }), 'policy.rules'), upstream: targetOf(config) }
}

const quiet = { debug () {}, info () {}, warn () {}, error () {} }

/** Runs the command; resolves to the exit code. */
export async function policyCommand (argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      request: { type: 'string' },
      principal: { type: 'string' },
      upstream: { type: 'string' },
      headers: { type: 'string' },
      annotations: { type: 'string' },
      era: { type: 'string' },
      help: { type: 'boolean', default: false }
    },
    strict: true
  })
  if (values.help || positionals[0] !== 'test') {
    out.write(POLICY_USAGE)
    return values.help ? 0 : 1
  }
  if (values.config === undefined) throw invalid('--config', 'is required')
  const request = object('--request', values.request)
  if (request === undefined || typeof request.method !== 'string') throw invalid('--request', 'must be a JSON-RPC request with a "method"')
  const principal = object('--principal', values.principal)
  if (principal !== undefined && typeof principal.id !== 'string') throw invalid('--principal', 'needs an "id"')
  if (values.era !== undefined && values.era !== '2025' && values.era !== '2026') throw invalid('--era', 'must be 2025 or 2026')
  const { policy, upstream } = await policyOf(values.config)
  const context: ExplainContext = {
    upstream: values.upstream ?? upstream.name ?? 'upstream',
    kind: upstream.kind,
    upstreamEra: upstream.era,
    era: values.era,
    principal: principal as ExplainContext['principal'],
    headers: object('--headers', values.headers) as Record<string, string> | undefined,
    annotations: object('--annotations', values.annotations),
    log: quiet
  }
  const decision = explain(policy, { jsonrpc: '2.0', id: 1, ...request } as JsonRpcRequest, context)
  out.write(explainText(decision))
  return decision.effect === 'allow' ? 0 : 2
}
