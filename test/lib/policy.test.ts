/**
 * The policy engine alone: rules compiled and type-checked once (a bad one named, with where),
 * the combining rule (deny overrides; the default decides operations only), errors never letting
 * a request through, and list filtering that hides exactly what every call of would be denied.
 */
import t from 'tap'
import fc from 'fast-check'
import { PolicyAnnotations, PolicyPrincipal, PolicyPrompt, PolicyResource, PolicySession, PolicyTool, PolicyUpstream, type PolicyInput } from '../../lib/policy/cel-env.ts'
import { Policy, PolicyCompileError, type PolicyRule } from '../../lib/policy/policy.ts'

function input (over: Partial<PolicyInput> & { toolName?: string, readOnly?: boolean } = {}): PolicyInput {
  const { toolName = 'run_query', readOnly = false, ...rest } = over
  return {
    principal: new PolicyPrincipal('alice', 'jwt', ['read'], { team: 'analytics' }),
    upstream: new PolicyUpstream('db', 'streamable-http', '2025', ''),
    method: 'tools/call',
    tool: new PolicyTool(toolName, toolName, new PolicyAnnotations({ readOnlyHint: readOnly })),
    arguments: {},
    resource: new PolicyResource(''),
    prompt: new PolicyPrompt(''),
    headers: {},
    session: new PolicySession('s1', '2025', 5n),
    now: new Date('2026-12-03T10:00:00Z'),
    ...rest
  }
}

const rule = (name: string, effect: 'allow' | 'deny', when: string, message?: string): PolicyRule => message === undefined ? { name, effect, when } : { name, effect, when, message }

t.test('a rule that does not compile is refused with its name and where', async (t) => {
  const refused = (when: string): PolicyCompileError => {
    try {
      void new Policy({ rules: [rule('ok', 'deny', 'true'), rule('bad one', 'deny', when)] })
    } catch (err) {
      return err as PolicyCompileError
    }
    throw new Error(`${when} compiled`)
  }
  const parse = refused('tool.name ==\n  && true')
  t.equal(parse.rule, 'bad one')
  t.match(parse.message, /policy rule "bad one": .* \(line 2, column 3\)/, 'a syntax error, at its line and column')
  t.match(refused('tool.nmae == "x"').message, /policy rule "bad one": .*nmae.* \(line 1, column \d+\)/, 'a field the variable does not have')
  t.match(refused('method == 3').message, /no such overload/, 'a comparison of the wrong types')
  t.match(refused('secrets == "x"').message, /Unknown variable: secrets/, 'an undeclared variable')
  t.match(refused('tool.name').message, /must be a bool expression, not string/, 'not a bool')
  t.throws(() => new Policy({ rules: [rule('a', 'deny', 'true'), rule('a', 'allow', 'true')] }), /another rule has this name/)
  t.match(refused('has(arguments.path) && arguments.path.matches("^(/?[a-z]+)*$")').message, /matches\(\) is not available .*use glob\(\)/, 'matches() (backtracking RegExp, ReDoS) is refused')
})

t.test('deny overrides allow; the default decides operations, other requests are allowed', async (t) => {
  const policy = new Policy({
    default: 'deny',
    rules: [
      rule('queries', 'allow', 'tool.name == "run_query"'),
      rule('not-there', 'deny', 'tool.name == "run_query" && arguments.?database.orValue("") != "analytics"', 'analytics only'),
      rule('glob', 'deny', 'tool.name.glob("delete_*")')
    ]
  })
  t.match(policy.decide(input({ arguments: { database: 'analytics' } })), { effect: 'allow', rule: { name: 'queries' } })
  t.match(policy.decide(input({ arguments: { database: 'payroll' } })), { effect: 'deny', rule: { name: 'not-there', message: 'analytics only' } }, 'a deny after the allow still wins')
  t.match(policy.decide(input({ toolName: 'list_files' })), { effect: 'deny', rule: undefined }, 'the default denies an operation no rule holds for')
  t.match(policy.decide(input({ toolName: 'delete_all' })), { effect: 'deny', rule: { name: 'glob' } })
  t.match(policy.decide(input({ method: 'tools/list', toolName: '' })), { effect: 'allow', rule: undefined }, 'a list is no operation: the default does not deny it')
  t.match(new Policy({ rules: [] }).decide(input()), { effect: 'allow' }, 'default allow')
})

t.test('a rule that fails while running never lets a request through', async (t) => {
  const policy = new Policy({ rules: [rule('limit', 'deny', 'arguments.limit > 100.0'), rule('trusted', 'allow', 'arguments.trusted == true')] })
  t.match(policy.decide(input({ arguments: {} })), { effect: 'deny', rule: { name: 'limit' } }, 'a deny rule that failed (no limit given) counts as holding')
  t.match(new Policy({ rules: [rule('limit', 'deny', 'arguments.?limit.orValue(0.0) > 100.0')] }).decide(input({ arguments: {} })), { effect: 'allow' }, 'written for a missing key, it does not fail')
  const strict = new Policy({ default: 'deny', rules: [rule('trusted', 'allow', 'arguments.trusted == true')] })
  t.match(strict.decide(input({ arguments: {} })), { effect: 'deny' }, 'an allow rule that fails does not allow')
  const explained = policy.decide(input({ arguments: {} }), true)
  t.match(explained.results, [{ name: 'limit', result: true, error: /limit/ }, { name: 'trusted', result: false, error: /trusted/ }], 'explain shows the error and what it counted as')
})

t.test('variables: principal claims, annotations, headers, session, time, upstream', async (t) => {
  const holds = (when: string, over: Parameters<typeof input>[0] = {}): boolean => new Policy({ rules: [rule('r', 'deny', when)] }).decide(input(over)).effect === 'deny'
  t.ok(holds('principal.claims.team == "analytics" && "read" in principal.scopes && principal.kind == "jwt"'))
  t.ok(holds('!tool.annotations.readOnlyHint && tool.annotations.destructiveHint && tool.annotations.openWorldHint && !tool.annotations.idempotentHint'), 'undeclared hints are the spec\'s defaults')
  t.ok(holds('tool.annotations.readOnlyHint', { readOnly: true }))
  t.ok(holds('headers["mcp-name"] == "run_query"', { headers: { 'mcp-name': 'run_query' } }))
  t.ok(holds('session.era == "2025" && session.age < 60 && session.id == "s1"'))
  t.ok(holds('now.getHours("UTC") == 10 && now < timestamp("2027-01-01T00:00:00Z")'))
  t.ok(holds('upstream.name == "db" && upstream.kind == "streamable-http" && upstream.era == "2025" && upstream.member == ""'))
  t.notOk(holds('principal.id.glob("bob*")'))
})

t.test('lists: an entry is hidden only when every call of it would be denied', async (t) => {
  const policy = new Policy({
    rules: [
      rule('read-only', 'deny', '"contractor" in principal.scopes && !tool.annotations.readOnlyHint'),
      rule('big', 'deny', 'tool.name == "run_query" && arguments.limit > 100.0')
    ]
  })
  const contractor = new PolicyPrincipal('c', 'jwt', ['contractor'], {})
  t.notOk(policy.listable(input({ principal: contractor, toolName: 'write' }), ['arguments']), 'denied whatever the arguments: hidden')
  t.ok(policy.listable(input({ principal: contractor, toolName: 'read', readOnly: true }), ['arguments']))
  t.ok(policy.listable(input({ readOnly: true }), ['arguments']), 'a rule on arguments keeps the tool listed: some calls are allowed')
  const allowList = new Policy({ default: 'deny', rules: [rule('q', 'allow', 'tool.name == "run_query" && arguments.limit < 10.0')] })
  t.ok(allowList.listable(input(), ['arguments']), 'an allow that depends on arguments may allow: listed')
  t.ok(allowList.listable(input({ toolName: 'other' }), ['arguments']), 'a rule reading arguments is not evaluated for a list: it keeps the tool (the stated rule)')
  t.notOk(new Policy({ default: 'deny', rules: [rule('q', 'allow', 'tool.name == "run_query"')] }).listable(input({ toolName: 'other' }), ['arguments']), 'nothing could allow it: hidden')
})

t.test('what a rule reads is found however deep, and headers read as a whole count as Mcp-Param', async (t) => {
  const deep = `arguments.x == "bad" && ${Array.from({ length: 600 }, (_, i) => `tool.name != "t${i}"`).join(' && ')}`
  const policy = new Policy({ default: 'deny', rules: [rule('deep', 'allow', deep)] })
  t.ok(policy.listable(input(), ['arguments']), 'a rule 600 conjuncts deep still reads arguments: the tool stays listed')
  const whole = new Policy({ rules: [rule('any-param', 'deny', 'headers.exists(k, k.startsWith("mcp-param-"))')] })
  t.ok(whole.listable(input(), ['mcp-param']), 'headers as a whole: unknown for a list')
  const literal = new Policy({ rules: [rule('param', 'deny', 'headers[?"mcp-param-path"].orValue("") == ""')] })
  t.ok(literal.listable(input(), ['mcp-param']), 'an Mcp-Param header by name: unknown for a list')
  const plain = new Policy({ rules: [rule('role', 'deny', 'headers[?"x-role"].orValue("") == ""')] })
  t.notOk(plain.listable(input(), ['mcp-param']), 'another header is known for a list')
})

t.test('property: the plain guards never change a decision, arguments and has() included', async (t) => {
  const conditions = ['has(arguments.text)', 'has(headers.accept)', '"read" in principal.scopes', '"admin" in principal.scopes', 'tool.name == "read_file"', '"run_query" == tool.name', 'tool.name in ["a", "read_file"]', 'tool.name.glob("read_*")', 'method == "tools/call"', 'arguments.?text.orValue("") == "x"', 'arguments.text == "x"']
  fc.assert(fc.property(
    fc.array(fc.record({ effect: fc.constantFrom<'allow' | 'deny'>('allow', 'deny'), when: fc.array(fc.constantFrom(...conditions), { minLength: 1, maxLength: 4 }).map((parts) => parts.join(' && ')) }), { maxLength: 5 }),
    fc.constantFrom('read_file', 'run_query', 'a'), fc.option(fc.constantFrom('x', 'y')), fc.boolean(),
    (rules, tool, text, accept) => {
      const policy = new Policy({ default: 'deny', rules: rules.map((r, i) => rule(`r${i}`, r.effect, r.when)) })
      const call = input({ toolName: tool, arguments: text === null ? {} : { text }, headers: accept ? { accept: '*/*' } : {} })
      return policy.decide(call).effect === policy.decide(call, true).effect
    }
  ), { numRuns: 300 })
  t.pass('300 random policies')
})

t.test('property: with rules that do not read arguments, a tool is listed iff a call of it is allowed', async (t) => {
  const tools = ['read_file', 'write_file', 'delete_all', 'run_query']
  const conditions = [
    'tool.name == "read_file"', 'tool.name.glob("*_file")', 'tool.name in ["run_query", "delete_all"]', 'method == "tools/call"', '"x" == tool.ownName', 'tool.name.startsWith("delete")', 'tool.annotations.readOnlyHint',
    '"contractor" in principal.scopes', 'principal.id == "alice"', 'upstream.name == "db"', 'session.age > 3', 'true', 'false'
  ]
  const ruleArb = fc.record({
    effect: fc.constantFrom<'allow' | 'deny'>('allow', 'deny'),
    when: fc.array(fc.constantFrom(...conditions), { minLength: 1, maxLength: 3 }).chain((parts) => fc.constantFrom(parts.join(' && '), parts.join(' || '), `!(${parts.join(' && ')})`))
  })
  fc.assert(fc.property(
    fc.array(ruleArb, { maxLength: 6 }), fc.constantFrom<'allow' | 'deny'>('allow', 'deny'), fc.constantFrom(...tools), fc.boolean(), fc.boolean(), fc.anything(),
    (rules, effect, tool, readOnly, contractor, args) => {
      const policy = new Policy({ default: effect, rules: rules.map((r, i) => rule(`r${i}`, r.effect, r.when)) })
      const principal = new PolicyPrincipal(contractor ? 'carl' : 'alice', 'jwt', contractor ? ['contractor'] : [], {})
      const listed = policy.listable(input({ principal, toolName: tool, readOnly }), ['arguments', 'headers'])
      const called = policy.decide(input({ principal, toolName: tool, readOnly, arguments: typeof args === 'object' && args !== null && !Array.isArray(args) ? args as Record<string, unknown> : {} })).effect === 'allow'
      // The plain guards (a rule's `tool.name == "x"` and the like, checked before CEL runs) never
      // change a decision: the explain path runs every rule in CEL alone.
      const explained = policy.decide(input({ principal, toolName: tool, readOnly }), true).effect
      return listed === called && explained === policy.decide(input({ principal, toolName: tool, readOnly })).effect
    }
  ), { numRuns: 300 })
  t.pass('300 random policies')
})
