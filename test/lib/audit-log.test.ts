/**
 * The audit log on real files: the hash chain across rotated files and restarts, what `verify`
 * finds when a record is edited, deleted or cut from the end, an incomplete last line cut at
 * start, a full disk (/dev/full) and a full queue that never hold the caller and are recorded as
 * gaps, and the arguments' digest and redaction.
 */
import t, { type Test } from 'tap'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditFile } from '../../lib/audit/file-sink.ts'
import { AuditLog, type AuditLogOptions } from '../../lib/audit/log.ts'
import { argumentsDigest, canonicalJson, Redactor, REDACTED, DEFAULT_REDACT, type AuditRecord } from '../../lib/audit/record.ts'
import { verifyAuditFiles } from '../../lib/audit/verify.ts'
import { parseHead, type ChainHead } from '../../lib/audit/chain.ts'
import type { Logger } from '../../lib/logger.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'
import { ExchangeAudit } from '../../lib/audit/exchange-audit.ts'

interface Logged { level: string, obj: Record<string, unknown>, msg: string }
function memoryLogger (): Logger & { lines: Logged[] } {
  const lines: Logged[] = []
  const at = (level: string) => (obj: object, msg: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

async function dir (t: Test): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'audit-'))
  t.teardown(() => rm(path, { recursive: true, force: true }))
  return path
}

const record = (n: number, args?: unknown): [AuditRecord, unknown] => [{ time: new Date(0).toISOString(), type: 'request', method: 'tools/call', tool: `t${n}`, outcome: 'ok' }, args]

async function openLog (path: string, options: Partial<AuditLogOptions> & { maxBytes?: number } = {}): Promise<AuditLog> {
  const { file, head, cut } = await AuditFile.open({ path, maxBytes: options.maxBytes ?? 1024 * 1024, keep: 20 })
  const log = new AuditLog({ file, head, logRecords: false, log: options.log ?? memoryLogger(), methods: ['tools/call'], arguments: 'digest', redact: DEFAULT_REDACT, queueLimit: 10_000, flushMs: 10, ...options })
  if (cut) log.lostBefore(1, 'cut')
  return log
}

async function files (path: string): Promise<string[]> {
  const base = path.split('/').pop() as string
  const folder = path.slice(0, -base.length - 1)
  return (await readdir(folder)).filter((name) => name.startsWith(base)).map((name) => join(folder, name))
}

async function lines (path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split('\n').filter((line) => line.length > 0)
}

t.test('a chain across rotated files and a restart verifies, in any order of the files', async (t) => {
  const path = join(await dir(t), 'audit.jsonl')
  let log = await openLog(path, { maxBytes: 4096 })
  for (let i = 0; i < 100; i++) log.add(...record(i, { i }))
  await log.close()
  // A restart goes on with the same chain.
  log = await openLog(path, { maxBytes: 4096 })
  for (let i = 100; i < 150; i++) log.add(...record(i))
  await log.close()
  const all = await files(path)
  t.ok(all.length >= 3, `rotated into ${all.length} files`)
  const verdict = await verifyAuditFiles([...all].reverse(), parseHead(log.chainHead))
  t.same(verdict.problems, [])
  t.equal(verdict.records, 150)
  t.equal(verdict.first, 1)
  t.equal(verdict.head?.seq, 150)
  t.equal(log.written, 50)
})

t.test('verify finds an edited record, a deleted one, and (with the head) one cut from the end', async (t) => {
  const path = join(await dir(t), 'audit.jsonl')
  const log = await openLog(path)
  for (let i = 0; i < 10; i++) log.add(...record(i))
  await log.close()
  const head = parseHead(log.chainHead) as ChainHead
  const original = await lines(path)
  t.ok((await verifyAuditFiles([path], head)).ok, 'the untouched file verifies')

  const edited = [...original]
  edited[3] = (edited[3] as string).replace('"outcome":"ok"', '"outcome":"error"')
  await writeFile(path, edited.join('\n') + '\n')
  const afterEdit = await verifyAuditFiles([path], head)
  t.notOk(afterEdit.ok)
  t.match(afterEdit.problems, [{ line: 5, problem: /does not chain to record 4/ }], 'the record after the edited one names it')

  await writeFile(path, [...original.slice(0, 6), ...original.slice(7)].join('\n') + '\n')
  const afterDelete = await verifyAuditFiles([path], head)
  t.match(afterDelete.problems, [{ line: 7, problem: /record 7 is missing/ }])

  await writeFile(path, original.slice(0, 9).join('\n') + '\n')
  t.ok((await verifyAuditFiles([path])).ok, 'without the head, a cut end cannot be seen')
  t.match((await verifyAuditFiles([path], head)).problems, [{ problem: /ends at 9:.*not at the head given/ }], 'with it, it is')

  await writeFile(path, [...original.slice(0, 2), 'not a record', ...original.slice(2)].join('\n') + '\n')
  t.match((await verifyAuditFiles([path], head)).problems, [{ line: 3, problem: 'not an audit record' }])
})

t.test('an incomplete last line is cut at start and the loss recorded as a gap', async (t) => {
  const path = join(await dir(t), 'audit.jsonl')
  let log = await openLog(path)
  for (let i = 0; i < 3; i++) log.add(...record(i))
  await log.close()
  await appendFile(path, '{"seq":4,"prev":"ab')
  log = await openLog(path)
  log.add(...record(3))
  await log.close()
  const verdict = await verifyAuditFiles([path], parseHead(log.chainHead))
  t.same(verdict.problems, [])
  t.equal(verdict.records, 5, 'three, the gap, the new one')
  t.match(verdict.notes, [/lost 1 record\(s\): 1 not written \(cut\)/])
})

t.test('a last line that is not a record refuses the file, and leaves it as it was', async (t) => {
  const path = join(await dir(t), 'audit.jsonl')
  for (const text of ['hello\n', 'someone else\'s notes, no newline', '{"seq":1,"prev":"' + '0'.repeat(64) + '"}\nnot ours either']) {
    await writeFile(path, text)
    await t.rejects(AuditFile.open({ path, maxBytes: 4096, keep: 1 }), /its last line is not an audit record/)
    t.equal(await readFile(path, 'utf8'), text, 'nothing cut')
  }
})

t.test('a rotation that cannot be made changes nothing; the file grows on and the chain holds', async (t) => {
  const folder = await dir(t)
  const path = join(folder, 'audit.jsonl')
  const logger = memoryLogger()
  const log = await openLog(path, { maxBytes: 4096, log: logger })
  // A folder where the new file would be opened: the rotation fails before touching anything.
  await mkdir(`${path}.new`)
  for (let i = 0; i < 60; i++) log.add(...record(i))
  await log.flush()
  for (let i = 60; i < 120; i++) log.add(...record(i))
  await log.close()
  t.same((await files(path)).map((name) => name.slice(path.length)).sort(), ['', '.new'], 'no rotated file, none lost')
  const verdict = await verifyAuditFiles([path], parseHead(log.chainHead))
  t.same(verdict.problems, [])
  t.equal(verdict.records, 120)
  t.equal(logger.lines.filter((line) => line.msg === 'audit file could not be rotated').length, 1, 'not tried again at every write')
})

t.test('a full disk never holds the caller: writes fail, are counted, and the log says so once', async (t) => {
  const logger = memoryLogger()
  const log = await openLog('/dev/full', { log: logger })
  const started = performance.now()
  for (let i = 0; i < 1000; i++) log.add(...record(i))
  const queuedIn = performance.now() - started
  await log.flush()
  t.ok(queuedIn < 1000, `1000 records queued without waiting on the disk (${queuedIn.toFixed(1)} ms)`)
  t.equal(log.failed, 1000)
  t.equal(log.written, 0)
  t.equal(logger.lines.filter((line) => line.level === 'error').length, 1, 'one error line for the whole failing spell')
  await log.close()
})

t.test('a full queue drops and counts, and the next write records the gap', async (t) => {
  const path = join(await dir(t), 'audit.jsonl')
  const log = await openLog(path, { queueLimit: 10 })
  for (let i = 0; i < 25; i++) log.add(...record(i))
  await log.close()
  t.equal(log.dropped, 15)
  const verdict = await verifyAuditFiles([path])
  t.ok(verdict.ok)
  t.equal(verdict.records, 11, 'the gap, then the ten that fitted')
  t.match(verdict.notes, [/record 1 .*lost 15 record\(s\): 15 dropped \(queue full\)/])
  const again = await openLog(path, { queueLimit: 10 })
  for (let i = 0; i < 13; i++) again.add(...record(i))
  await again.flush()
  again.add(...record(100))
  await again.close()
  t.equal(again.written, 11)
  const after = await verifyAuditFiles([path])
  t.ok(after.ok)
  t.match(after.notes, [/lost 15/, /record 12 .*lost 3 record\(s\)/])
})

t.test('arguments: a digest independent of key order, redaction at any depth', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), '{"a":[{"c":null,"d":2}],"b":1}')
  t.equal(argumentsDigest({ a: 1, b: 2 }), argumentsDigest({ b: 2, a: 1 }))
  t.not(argumentsDigest({ a: 1 }), argumentsDigest({ a: 2 }))
  const redactor = new Redactor(DEFAULT_REDACT)
  const args = { user: 'x', API_KEY: 'k', nested: [{ password: 'p', ok: 1 }], auth: { Authorization: 'Bearer t', accessToken: 't' } }
  t.same(redactor.redact(args), { user: 'x', API_KEY: REDACTED, nested: [{ password: REDACTED, ok: 1 }], auth: { Authorization: REDACTED, accessToken: REDACTED } })
  t.equal(args.API_KEY, 'k', 'the original is untouched')
  const poisoned = JSON.parse('{"__proto__":{"password":"p","x":1}}') as unknown
  t.equal(JSON.stringify(redactor.redact(poisoned)), '{"__proto__":{"password":"[redacted]","x":1}}', 'a __proto__ key stays a key, redacted inside')
  let deep: unknown = 'leaf'
  for (let i = 0; i < 10_000; i++) deep = { a: deep }
  t.type(argumentsDigest(deep), 'string', 'deep arguments still get a digest')
  t.doesNotThrow(() => redactor.redact(deep))
})

t.test('an exchange\'s records: each answer decides its outcome; what is left ends with the exchange', async (t) => {
  const logger = memoryLogger()
  const log = new AuditLog({ file: undefined, head: { seq: 0, hash: '0'.repeat(64) }, logRecords: true, log: logger, methods: ['tools/call'], arguments: 'digest', redact: [], queueLimit: 100, flushMs: 10 })
  const call = (id: number, name: string): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { id } } })
  const messages = [call(1, 'ok'), call(2, 'tool-error'), call(3, 'timeout'), call(4, 'down'), call(5, 'dropped'), call(6, 'left'), { jsonrpc: '2.0', id: 7, method: 'tools/list' } as JsonRpcMessage]
  const audit = ExchangeAudit.begin(log, messages, { principal: 'p', session: 's', upstream: 'u', memberOf: undefined }) as ExchangeAudit
  t.ok(audit)
  t.equal(ExchangeAudit.begin(log, [messages[6] as JsonRpcMessage], { principal: undefined, session: undefined, upstream: 'u', memberOf: undefined }), undefined, 'no audited request: no audit')
  // An interceptor dropped request 5: neither sent nor answered.
  audit.sent(messages.filter((m) => !('id' in m) || m.id !== 5))
  audit.answered({ jsonrpc: '2.0', id: 1, result: { content: [] } })
  audit.answered({ jsonrpc: '2.0', id: 2, result: { content: [], isError: true } })
  audit.answered({ jsonrpc: '2.0', id: 3, error: { code: -32061, message: 'timed out' } })
  audit.answered({ jsonrpc: '2.0', id: 4, error: { code: -32060, message: 'down' } })
  audit.answered({ jsonrpc: '2.0', id: 1, result: {} })
  audit.answered({ jsonrpc: '2.0', id: 7, result: { tools: [] } })
  audit.close('cancelled')
  await log.flush()
  const outcomes = logger.lines.filter((line) => line.msg === 'audit').map((line) => {
    const record = line.obj.audit as AuditRecord
    return [record.tool, record.outcome, record.error?.code]
  })
  t.same(outcomes, [['dropped', 'denied', undefined], ['ok', 'ok', undefined], ['tool-error', 'error', undefined], ['timeout', 'timeout', -32061], ['down', 'failed', -32060], ['left', 'cancelled', undefined]], 'one record each; a second answer to 1 and the list make none')
})
