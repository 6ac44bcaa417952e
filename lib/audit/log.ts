/**
 * The audit log: records are queued on the request path and written off it, in batches (one write
 * per batch: a write costs tens of µs of CPU, a record a few). A slow or failing sink never holds a
 * call: the queue is bounded (more records are dropped), a failed write is counted and logged once
 * per failing spell, and what was lost is written into the chain as a `gap` record before the
 * next records, so the file says what it lacks.
 */
import type { Logger } from '../logger.ts'
import type { Effect } from '../policy/policy.ts'
import { formatHead, seal, type ChainHead } from './chain.ts'
import type { AuditFile } from './file-sink.ts'
import { argumentsDigest, Redactor, type AuditRecord } from './record.ts'

export interface AuditLogOptions {
  /** The chained file; none: records are only logged. */
  file: AuditFile | undefined
  /** Where the file's chain stands. */
  head: ChainHead
  /** Also log each record (at info, as `audit`). */
  logRecords: boolean
  log: Logger
  /** Methods whose every request is recorded. */
  methods: readonly string[]
  arguments: 'digest' | 'redacted'
  redact: readonly string[]
  queueLimit: number
  /** How long a record may wait for others to be written with. */
  flushMs: number
}

export interface PolicyDecision {
  effect: Effect
  rule: string
  approval?: string
  approver?: string | null
}

/** Most records in one write. */
const BATCH = 512

type Queued = [record: AuditRecord, args: unknown, at: number | undefined]

/** Records lost since the last gap record: dropped (queue full), and not written, by reason. */
interface Loss {
  dropped: number
  notWritten: Map<string, number>
}

export class AuditLog {
  readonly methods: ReadonlySet<string>
  /** Key globs whose values redacted arguments hide (the approval queue hides the same). */
  readonly redact: readonly string[]
  /** Whether a policy is linked: records then carry its decision. */
  policy = false
  /** The policy's decision on each request (and a held call's approval), until its record is made. */
  readonly decisions = new WeakMap<object, PolicyDecision>()
  /** Records written (gap records not counted), dropped, and lost to failed writes. */
  written = 0
  dropped = 0
  failed = 0
  private readonly options: AuditLogOptions
  private readonly redactor: Redactor | undefined
  private head: ChainHead
  private queue: Queued[] = []
  private readonly loss: Loss = { dropped: 0, notWritten: new Map() }
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined
  private writing: Promise<void> | undefined
  private failing = false
  private closed = false

  constructor (options: AuditLogOptions) {
    this.options = options
    this.head = options.head
    this.methods = new Set(options.methods)
    this.redact = options.redact
    this.redactor = options.arguments === 'redacted' ? new Redactor(options.redact) : undefined
  }

  /** The chain's head, `seq:hash`: what `audit verify --head` checks the file's end against. */
  get chainHead (): string {
    return formatHead(this.head)
  }

  get queued (): number {
    return this.queue.length
  }

  audits (method: string): boolean {
    return this.methods.has(method)
  }

  decided (request: object): PolicyDecision | undefined {
    return this.decisions.get(request)
  }

  /**
   * Queues a record; `args` (a request's arguments) get their digest, or copy, when written, and
   * `at` (epoch ms, when given) becomes its `time` then: both off the request path.
   */
  add (record: AuditRecord, args?: unknown, at?: number): void {
    if (this.closed || this.queue.length >= this.options.queueLimit) {
      this.dropped++
      this.loss.dropped++
      return
    }
    this.queue.push([record, args, at])
    this.schedule(false)
  }

  /** Records lost before any of this log's (an incomplete line cut at start): the next write says so. */
  lostBefore (count: number, reason: string): void {
    this.loss.notWritten.set(reason, (this.loss.notWritten.get(reason) ?? 0) + count)
  }

  /** Writes everything queued now. */
  async flush (): Promise<void> {
    this.cancelTimer()
    // Bounded: each turn writes a batch (or fails it: the queue shrinks either way) or waits for one.
    while (this.writing !== undefined || this.queue.length > 0) {
      if (this.writing === undefined) this.startBatch()
      await this.writing
      this.cancelTimer()
    }
  }

  async close (): Promise<void> {
    this.closed = true
    await this.flush()
    // A loss with no record after it still goes in, so the file says what it lacks.
    if (this.options.file !== undefined && hasLoss(this.loss)) {
      this.startBatch()
      await this.writing
    }
    await this.options.file?.close()
    this.options.log.info({ head: this.chainHead, written: this.written, dropped: this.dropped, failed: this.failed }, 'audit log closed')
  }

  private schedule (soon: boolean): void {
    if (this.timer !== undefined || this.writing !== undefined || this.closed) return
    const { flushMs } = this.options
    this.timer = soon || flushMs === 0 ? setImmediate(this.fire) : setTimeout(this.fire, flushMs)
    // A record waits at most flushMs; a process that exits without closing loses what waits.
    this.timer.unref()
  }

  private cancelTimer (): void {
    if (this.timer === undefined) return
    clearTimeout(this.timer as NodeJS.Timeout)
    clearImmediate(this.timer as NodeJS.Immediate)
    this.timer = undefined
  }

  private readonly fire = (): void => {
    this.timer = undefined
    this.startBatch()
  }

  private startBatch (): void {
    this.writing = this.writeBatch().finally(() => {
      this.writing = undefined
      // A full batch waiting: straight on; fewer: they wait for company.
      if (this.queue.length > 0) this.schedule(this.queue.length >= BATCH)
    })
  }

  private take (): Queued[] {
    if (this.queue.length <= BATCH) {
      const all = this.queue
      this.queue = []
      return all
    }
    return this.queue.splice(0, BATCH)
  }

  /** Writes one batch, after a gap record for what was lost before it. Never throws. */
  private async writeBatch (): Promise<void> {
    const batch = this.take()
    const lost = hasLoss(this.loss) ? copyLoss(this.loss) : undefined
    const records: AuditRecord[] = []
    if (lost !== undefined) records.push(gapRecord(lost))
    for (const [record, args, at] of batch) records.push(this.filled(record, args, at))
    const file = this.options.file
    if (file === undefined) {
      this.logged(records)
      this.written += batch.length
      if (lost !== undefined) subtractLoss(this.loss, lost)
      return
    }
    let head = this.head
    const lines: string[] = []
    for (const record of records) {
      const sealed = seal(JSON.stringify(record), head)
      lines.push(sealed.line)
      head = sealed.head
    }
    try {
      await file.append(lines.join('\n') + '\n')
    } catch (err) {
      this.writeFailed(err as NodeJS.ErrnoException, batch.length)
      return
    }
    this.head = head
    this.written += batch.length
    if (lost !== undefined) subtractLoss(this.loss, lost)
    if (this.failing) {
      this.failing = false
      this.options.log.warn({ file: file.path, head: this.chainHead }, 'audit writes resumed; a gap record says what was lost')
    }
    if (this.options.logRecords) this.logged(records)
    if (file.needsRotation) await this.rotate(file)
  }

  private filled (record: AuditRecord, args: unknown, at: number | undefined): AuditRecord {
    if (at !== undefined) record.time = new Date(at).toISOString()
    if (args === undefined) return record
    record.argumentsDigest = argumentsDigest(args)
    if (this.redactor !== undefined) record.arguments = this.redactor.redact(args)
    return record
  }

  private logged (records: AuditRecord[]): void {
    for (const record of records) {
      if (record.type === 'gap') this.options.log.warn({ audit: record }, 'audit records lost')
      else this.options.log.info({ audit: record }, 'audit')
    }
  }

  private writeFailed (err: NodeJS.ErrnoException, count: number): void {
    this.failed += count
    const reason = err.code ?? err.message
    this.loss.notWritten.set(reason, (this.loss.notWritten.get(reason) ?? 0) + count)
    if (this.failing) return
    this.failing = true
    this.options.log.error({ err, file: this.options.file?.path }, 'audit writes are failing: records are lost (counted) until the file takes writes again')
  }

  private async rotate (file: AuditFile): Promise<void> {
    try {
      if (await file.rotate()) this.options.log.info({ file: file.path, head: this.chainHead }, 'audit file rotated')
    } catch (err) {
      // Records go on into the same file, which grows past maxBytes; the rotation is tried again later.
      this.options.log.error({ err, file: file.path }, 'audit file could not be rotated')
    }
  }
}

function hasLoss (loss: Loss): boolean {
  return loss.dropped > 0 || loss.notWritten.size > 0
}

function copyLoss (loss: Loss): Loss {
  return { dropped: loss.dropped, notWritten: new Map(loss.notWritten) }
}

function subtractLoss (loss: Loss, written: Loss): void {
  loss.dropped -= written.dropped
  for (const [reason, count] of written.notWritten) {
    const left = (loss.notWritten.get(reason) ?? 0) - count
    if (left > 0) loss.notWritten.set(reason, left)
    else loss.notWritten.delete(reason)
  }
}

function gapRecord (loss: Loss): AuditRecord {
  const reasons: string[] = []
  let lost = loss.dropped
  if (loss.dropped > 0) reasons.push(`${loss.dropped} dropped (queue full)`)
  for (const [reason, count] of loss.notWritten) {
    lost += count
    reasons.push(`${count} not written (${reason})`)
  }
  return { time: new Date().toISOString(), type: 'gap', lost, reason: reasons.join(', ') }
}
