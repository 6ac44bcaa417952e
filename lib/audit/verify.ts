/**
 * `audit verify`: reads audit files (a file and its rotated ones, in any order: they are put in
 * order by their first record) and checks the chain line by line. An edited record no longer
 * matches the next one's `prev`; a deleted one leaves a hole in `seq`; a line that is no record is
 * named; with the head the gateway logged, records cut from the end are found too. Gaps the
 * gateway recorded (records it lost) are notes, not problems: the file says what it lacks.
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { chainFields, GENESIS, lineHash, type ChainHead } from './chain.ts'

export interface AuditProblem {
  file: string
  line: number
  problem: string
}

export interface AuditVerdict {
  ok: boolean
  /** Records read (gap records included). */
  records: number
  /** The first record's `seq`. */
  first: number | undefined
  /** Where the chain ends: the last record's `seq` and hash. */
  head: ChainHead | undefined
  problems: AuditProblem[]
  notes: string[]
}

interface Last {
  seq: number
  hash: string
  file: string
  line: number
}

class ChainCheck {
  readonly problems: AuditProblem[] = []
  readonly notes: string[] = []
  records = 0
  first: number | undefined
  last: Last | undefined
  /** Whether the given head's record was met, and matched. */
  headMet: boolean | undefined
  private readonly head: ChainHead | undefined

  constructor (head: ChainHead | undefined) {
    this.head = head
  }

  line (file: string, line: number, text: string): void {
    const fields = chainFields(text)
    if (fields === undefined) {
      this.problems.push({ file, line, problem: 'not an audit record' })
      return
    }
    const { seq, prev, record } = fields
    const hash = lineHash(text)
    this.records++
    this.link(file, line, seq, prev)
    if (record.type === 'gap') this.notes.push(`record ${seq} (${file}:${line}): lost ${String(record.lost)} record(s): ${String(record.reason)}`)
    if (this.head !== undefined && seq === this.head.seq) {
      this.headMet = hash === this.head.hash
      if (!this.headMet) this.problems.push({ file, line, problem: `record ${seq} is not the head given (${this.head.seq}:${this.head.hash}): it was changed` })
    }
    this.last = { seq, hash, file, line }
  }

  /** How this record follows the one before it. */
  private link (file: string, line: number, seq: number, prev: string): void {
    const before = this.last
    if (before === undefined) {
      this.first = seq
      if (seq === 1 && prev !== GENESIS) this.problems.push({ file, line, problem: 'record 1 does not start a chain: its prev is not 64 zeros' })
      if (seq > 1) this.notes.push(`the chain starts at record ${seq} (${file}:${line}): the records before it are in files not given`)
      return
    }
    const expected = before.seq + 1
    if (seq === expected) {
      if (prev !== before.hash) this.problems.push({ file, line, problem: `does not chain to record ${before.seq} (${before.file}:${before.line}): that record was changed, or this one's prev was` })
    } else if (seq > expected) {
      this.problems.push({ file, line, problem: seq === expected + 1 ? `record ${expected} is missing` : `records ${expected} to ${seq - 1} are missing` })
    } else {
      this.problems.push({ file, line, problem: `record ${seq} comes after record ${before.seq}: records were moved or repeated` })
    }
  }

  end (): void {
    const { head, last } = this
    if (head === undefined || this.headMet !== undefined) return
    if (last === undefined || last.seq < head.seq) {
      const ends = last === undefined ? 'no records' : `ends at ${last.seq}:${last.hash}`
      this.problems.push({ file: last?.file ?? '-', line: last?.line ?? 0, problem: `the chain ${ends}, not at the head given (${head.seq}:${head.hash}): records were cut from the end` })
    } else {
      this.notes.push(`record ${head.seq} (the head given) is in a file not given`)
    }
  }
}

async function eachLine (path: string, take: (line: string, n: number) => void): Promise<void> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity })
  let n = 0
  for await (const line of lines) take(line, ++n)
}

/** The `seq` of a file's first record (files with none go last). */
async function firstSeq (path: string): Promise<number> {
  let first = Number.MAX_SAFE_INTEGER
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity })
  for await (const line of lines) {
    const fields = chainFields(line)
    if (fields !== undefined) {
      first = fields.seq
      break
    }
  }
  lines.close()
  return first
}

export async function verifyAuditFiles (paths: readonly string[], head?: ChainHead): Promise<AuditVerdict> {
  const ordered = await Promise.all([...new Set(paths)].map(async (path) => ({ path, first: await firstSeq(path) })))
  ordered.sort((a, b) => a.first - b.first)
  const check = new ChainCheck(head)
  for (const { path } of ordered) await eachLine(path, (line, n) => { check.line(path, n, line) })
  check.end()
  const last = check.last
  return {
    ok: check.problems.length === 0,
    records: check.records,
    first: check.first,
    head: last === undefined ? undefined : { seq: last.seq, hash: last.hash },
    problems: check.problems,
    notes: check.notes
  }
}
