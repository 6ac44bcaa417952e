/** Merging members' lists: filters, renames, naming modes, the gateway's own cursors. */
import t from 'tap'
import { compileFilter, decodeCursor, encodeCursor, mergeLists, page, templateGlob, type CatalogMember, type Item } from '../../lib/federation/catalog.ts'
import { globMatch } from '../../lib/glob.ts'

const tools = (...names: string[]): Item[] => names.map((name) => ({ name, description: `${name} tool` }))
const members = (filters: Array<Parameters<typeof compileFilter>[0]> = [undefined, undefined]): CatalogMember[] =>
  filters.map((filter, index) => ({ index, namespace: ['a', 'b'][index] as string, filter: compileFilter(filter) }))

t.test('prefix: every name namespaced, renames as given, descriptions replaced', async (t) => {
  const merged = mergeLists('tools', { naming: 'prefix', separator: '_' }, members([{ rename: { echo: 'say' }, describe: { add: 'Sums' }, exclude: [] }, undefined]), [tools('echo', 'add'), tools('echo')])
  t.same(merged.items.map((item) => item.name), ['say', 'a_add', 'b_echo'])
  t.equal(merged.items[1]?.description, 'Sums')
  t.same(merged.byExposed.get('say'), { member: 0, own: 'echo', exposed: 'say', item: merged.items[0] })
  t.equal(merged.byExposed.get('b_echo')?.member, 1)
})

t.test('include and exclude globs match the upstream\'s own names', async (t) => {
  const merged = mergeLists('tools', { naming: 'prefix', separator: '.' }, members([{ include: ['read_*', 'write_file'], exclude: ['read_secret*'], rename: {}, describe: {} }, { exclude: ['*'], rename: {}, describe: {} }]),
    [tools('read_file', 'read_secret_key', 'write_file', 'delete_file'), tools('anything')])
  t.same(merged.items.map((item) => item.name), ['a.read_file', 'a.write_file'])
})

t.test('collision: only shared names are namespaced; none: the first member wins', async (t) => {
  const lists = [tools('echo', 'add'), tools('echo', 'sub')]
  t.same(mergeLists('tools', { naming: 'collision', separator: '_' }, members(), lists).items.map((item) => item.name), ['a_echo', 'add', 'b_echo', 'sub'])
  const none = mergeLists('tools', { naming: 'none', separator: '_' }, members(), lists)
  t.same(none.items.map((item) => item.name), ['echo', 'add', 'sub'])
  t.equal(none.byExposed.get('echo')?.member, 0, 'priority is the members\' order')
})

t.test('a member left out (down, slow) adds nothing', async (t) => {
  t.same(mergeLists('tools', { naming: 'collision', separator: '_' }, members(), [undefined, tools('echo')]).items.map((item) => item.name), ['echo'])
})

t.test('resource URIs are namespaced reversibly, templates too', async (t) => {
  const merged = mergeLists('resources', { naming: 'prefix', separator: '_' }, members(), [[{ uri: 'file:///x', name: 'x' }], []])
  t.same(merged.items.map((item) => item.uri), ['a+file:///x'])
  const templates = mergeLists('resourceTemplates', { naming: 'prefix', separator: '_' }, members(), [[{ uriTemplate: 'demo://r/{id}', name: 'r' }], []])
  t.same(templates.items.map((item) => item.uriTemplate), ['a+demo://r/{id}'])
  t.ok(globMatch(templateGlob('demo://r/{id}'), 'demo://r/42'))
  t.notOk(globMatch(templateGlob('demo://r/{id}'), 'other://r/42'))
})

t.test('cursors: stateless, per kind, refused when not ours', async (t) => {
  const merged = mergeLists('tools', { naming: 'none', separator: '_' }, members(), [tools('a', 'b', 'c', 'd', 'e'), undefined])
  const first = page('tools', merged, 0, 2)
  t.same((first.tools as Item[]).map((item) => item.name), ['a', 'b'])
  const offset = decodeCursor('tools', first.nextCursor)
  t.equal(offset, 2)
  const last = page('tools', merged, 4, 2)
  t.same((last.tools as Item[]).map((item) => item.name), ['e'])
  t.notOk('nextCursor' in last, 'the last page has no cursor')
  t.equal(decodeCursor('prompts', encodeCursor('tools', 2)), undefined, 'a cursor of another list')
  t.equal(decodeCursor('tools', 'not-a-cursor'), undefined)
  t.equal(decodeCursor('tools', encodeCursor('tools', -1)), undefined)
  t.equal(decodeCursor('tools', 'x'.repeat(300)), undefined, 'an oversized cursor')
})
