/**
 * The rewrite rule's JSON merge patch never lets `__proto__`, `constructor` or `prototype` keys
 * reach an object merge: a config patch holding one is refused when compiled, and `mergePatch`
 * skips them, whatever the target (a client's arguments) holds.
 */
import t from 'tap'
import { compileRules, mergePatch } from '../../lib/interceptors/rules.ts'

t.test('mergePatch skips prototype keys', async (t) => {
  const patch = JSON.parse('{"a":1,"__proto__":{"polluted":true},"nested":{"constructor":{"prototype":{"polluted":true}},"prototype":{"x":1},"b":2}}') as unknown
  const out = mergePatch({ keep: true }, patch) as Record<string, unknown>
  t.equal(Object.getPrototypeOf(out), Object.prototype, 'the result keeps its prototype')
  t.equal((out as { polluted?: unknown }).polluted, undefined)
  t.same(out, { keep: true, a: 1, nested: { b: 2 } })
  const nested = out.nested as Record<string, unknown>
  t.notOk(Object.hasOwn(nested, 'constructor'))
  t.notOk(Object.hasOwn(nested, 'prototype'))
  t.equal(({} as { polluted?: unknown }).polluted, undefined, 'Object.prototype untouched')
})

t.test('mergePatch keeps standard behaviour otherwise', async (t) => {
  t.same(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: null, b: { c: 5 }, e: [1] }), { b: { c: 5, d: 3 }, e: [1] })
  t.same(mergePatch('x', { a: 1 }), { a: 1 })
  t.equal(mergePatch({ a: 1 }, 'y'), 'y')
})

t.test('a rewrite rule whose patch holds a prototype key is refused when compiled', async (t) => {
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    const rule = JSON.parse(`{"rewrite":{"tool":"x","arguments":{"deep":{"${key}":{"polluted":true}}}}}`) as unknown
    t.throws(() => compileRules([rule]), { message: `Invalid option "rules[0].rewrite.arguments": must not hold a "${key}" key (at arguments.deep)` }, key)
  }
})
