/**
 * The glob matcher agrees with a reference implementation (a plain dynamic-programming matcher,
 * obviously correct and too slow for production) on random globs and names, line terminators and
 * regex metacharacters included, and stays fast on names built to defeat it.
 */
import t from 'tap'
import fc from 'fast-check'
import { globMatch, globMatcher } from '../../lib/glob.ts'

/** match[i][j]: the first i characters of the glob match the first j of the name. */
function reference (glob: string, name: string): boolean {
  let row: boolean[] = Array.from({ length: name.length + 1 }, (_, j) => j === 0)
  for (const c of glob) {
    const next: boolean[] = new Array<boolean>(name.length + 1).fill(false)
    next[0] = c === '*' && row[0] === true
    for (let j = 1; j <= name.length; j++) {
      next[j] = c === '*' ? row[j] === true || next[j - 1] === true : row[j - 1] === true && name[j - 1] === c
    }
    row = next
  }
  return row[name.length] === true
}

// A small alphabet makes matches (and near misses) likely; the specials check nothing leaks
// through as regex syntax.
const alphabet = fc.constantFrom('a', 'b', '*', '.', '?', '\n', '\r', '\u2028', '\\', '(', '[', '$', '^')
const glob = fc.string({ unit: alphabet, maxLength: 12 })
const name = fc.string({ unit: fc.constantFrom('a', 'b', '.', '?', '\n', '\r', '\u2028', '\\', '(', '[', '$', '^', '*'), maxLength: 24 })

t.test('agrees with the reference matcher', async (t) => {
  fc.assert(fc.property(glob, name, (g, n) => globMatch(g, n) === reference(g, n)), { numRuns: 20_000 })
  t.pass('20000 random cases')
})

t.test('a name that contains the glob, by construction, matches', async (t) => {
  fc.assert(fc.property(fc.array(fc.string({ unit: alphabet.filter((c) => c !== '*'), maxLength: 4 }), { minLength: 1, maxLength: 5 }), fc.array(name, { minLength: 6, maxLength: 6 }), (parts, fillers) => {
    const g = parts.join('*')
    const n = parts.map((part, i) => i === 0 ? part : `${fillers[i] ?? ''}${part}`).join('')
    return globMatch(g, n) && reference(g, n)
  }))
  t.pass()
})

t.test('a list matches when any glob does; an empty list matches nothing', async (t) => {
  fc.assert(fc.property(fc.array(glob, { maxLength: 4 }), name, (globs, n) => globMatcher(globs).test(n) === globs.some((g) => reference(g, n))))
  t.notOk(globMatcher([]).test(''))
  t.ok(globMatcher('').test(''))
  t.notOk(globMatcher('').test('a'))
  t.ok(globMatcher('*').test('any\nthing'))
  t.ok(globMatcher('a*a').test('a\na'))
  t.notOk(globMatcher('a*a').test('a'), 'head and tail do not overlap')
  t.notOk(globMatcher('ab*b*ba').test('abba'), 'middle segments do not overlap the tail')
})

t.test('1 MiB names against adversarial globs: milliseconds', async (t) => {
  const names = ['a'.repeat(1 << 20), 'ab'.repeat(1 << 19), `${'a'.repeat(1 << 20)}\n`]
  const globs = globMatcher(['*a*b', '*a*a*a*a*c*', 'a*aab*', '*delete*', '*\n*x'])
  for (const n of names) {
    const started = performance.now()
    globs.test(n)
    const ms = performance.now() - started
    t.ok(ms < 500, `${ms.toFixed(1)} ms`)
  }
})
