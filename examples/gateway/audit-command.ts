/**
 * `fastify-mcp-gateway audit verify FILE... [--head SEQ:HASH]`: checks audit files (a file and its
 * rotated ones, in any order) for an unbroken hash chain. `--head` is the chain head the gateway
 * logged ("audit log closed", "audit file rotated"): with it, records cut from the end are found too.
 * Exit code 0: the chain is whole; 2: it is broken; 1: the command could not run.
 */
import { parseArgs } from 'node:util'
import { parseHead } from '../../lib/audit/chain.ts'
import { verifyAuditFiles } from '../../lib/audit/verify.ts'
import { invalid } from '../../lib/options.ts'

export const AUDIT_USAGE = `Usage: fastify-mcp-gateway audit verify FILE... [--head SEQ:HASH]

  FILE...          the audit file and its rotated files (audit.jsonl audit.jsonl.1 ...), any order
  --head SEQ:HASH  the chain head the gateway logged at close or rotation: checks the chain's end too

Exit code: 0 the chain is whole, 2 it is broken, 1 the command could not run.
`

export async function auditCommand (argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { head: { type: 'string' }, help: { type: 'boolean', default: false } },
    strict: true
  })
  const [verb, ...files] = positionals
  if (values.help || verb !== 'verify' || files.length === 0) {
    out.write(AUDIT_USAGE)
    return values.help ? 0 : 1
  }
  const head = values.head === undefined ? undefined : parseHead(values.head)
  if (values.head !== undefined && head === undefined) throw invalid('--head', 'must be SEQ:HASH (the 64 hex digits of a SHA-256)')
  const verdict = await verifyAuditFiles(files, head)
  for (const note of verdict.notes) out.write(`note: ${note}\n`)
  for (const { file, line, problem } of verdict.problems) out.write(`${file}:${line}: ${problem}\n`)
  const span = verdict.first === undefined || verdict.head === undefined ? 'no records' : `records ${verdict.first} to ${verdict.head.seq}, head ${verdict.head.seq}:${verdict.head.hash}`
  out.write(verdict.ok ? `ok: ${verdict.records} records in ${files.length} file(s), ${span}\n` : `broken: ${verdict.problems.length} problem(s) in ${verdict.records} records\n`)
  return verdict.ok ? 0 : 2
}
