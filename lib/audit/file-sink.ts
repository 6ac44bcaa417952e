/**
 * The audit file: appended to, never rewritten; rotated by size into `<path>.1` (newest) to
 * `<path>.<keep>`. Opening it finds where its chain stands (its last record, or the newest rotated
 * file's when it is empty), cuts an incomplete last line (the process died mid-write) and refuses a
 * last line that is no record (someone else's file: never append a chain to it). A write that
 * fails is cut back, so the file never holds half a record.
 */
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { chainFields, EMPTY_HEAD, lineHash, type ChainHead } from './chain.ts'

export interface AuditFileOptions {
  path: string
  /** Rotate once the file holds this many bytes. */
  maxBytes: number
  /** Rotated files kept. */
  keep: number
}

export class AuditFileError extends Error {}

/** Read back from the end this much at a time, looking for the last line. */
const TAIL_CHUNK = 64 * 1024
/** A last line longer than this is not looked for (no record is). */
const TAIL_MAX = 256 * 1024 * 1024
const NEWLINE = 0x0a
/** How long after a failed rotation the next is tried. */
const ROTATE_RETRY_MS = 60_000
const RECORD_START = Buffer.from('{"seq":')

export interface OpenedAuditFile {
  file: AuditFile
  /** Where the chain stands: the next record follows this. */
  head: ChainHead
  /** Whether an incomplete last line was cut. */
  cut: boolean
}

export class AuditFile {
  readonly path: string
  private readonly options: AuditFileOptions
  private handle: FileHandle
  private size: number
  /** Regular files rotate and are cut back; a device (/dev/full, a pipe) is only written. */
  private readonly regular: boolean
  /** After a failed rotation: no new try before this (epoch ms). */
  private retryAt = 0

  private constructor (options: AuditFileOptions, handle: FileHandle, size: number, regular: boolean) {
    this.options = options
    this.path = options.path
    this.handle = handle
    this.size = size
    this.regular = regular
  }

  static async open (options: AuditFileOptions): Promise<OpenedAuditFile> {
    await mkdir(dirname(options.path), { recursive: true })
    const handle = await open(options.path, 'a+')
    try {
      const stat = await handle.stat()
      if (!stat.isFile()) return { file: new AuditFile(options, handle, 0, false), head: EMPTY_HEAD, cut: false }
      const { line, end } = await lastLine(handle, stat.size)
      // Checked before anything is cut: a file that is not ours is refused whole, never changed.
      const head = line === undefined ? await rotatedHead(options.path) : headOf(line, options.path)
      const cut = end < stat.size
      if (cut) {
        if (!await startsRecord(handle, end)) throw new AuditFileError(`${options.path}: its last line is not an audit record (verify it with "audit verify", then move it away)`)
        await handle.truncate(end)
      }
      return { file: new AuditFile(options, handle, end, true), head, cut }
    } catch (err) {
      await handle.close()
      throw err
    }
  }

  get needsRotation (): boolean {
    return this.regular && this.size >= this.options.maxBytes
  }

  /** Appends `text` whole, or throws having cut the file back to where it was. */
  async append (text: string): Promise<void> {
    const bytes = Buffer.from(text)
    let at = 0
    try {
      while (at < bytes.length) at += (await this.handle.write(bytes, at)).bytesWritten
    } catch (err) {
      if (at > 0 && this.regular) await this.handle.truncate(this.size).catch(() => {})
      throw err
    }
    this.size += bytes.length
  }

  /**
   * `<path>.k` becomes `.k+1` (the oldest falls off), the file `.1`, and a new file starts. The new
   * file is opened first (under a temporary name): a rotation that cannot open one changes nothing,
   * and the file grows on; one that fails after moving the file moves it back. After a failure the
   * next try waits `ROTATE_RETRY_MS`, so a lasting failure shifts (and so drops the oldest of) the
   * rotated files at most once a minute.
   */
  async rotate (): Promise<boolean> {
    const { path, keep } = this.options
    if (Date.now() < this.retryAt) return false
    const fresh = `${path}.new`
    let next: FileHandle
    try {
      // Append mode, as every audit handle: writes go to the end even after a cut-back.
      next = await open(fresh, 'a')
    } catch (err) {
      this.retryAt = Date.now() + ROTATE_RETRY_MS
      throw err
    }
    let moved = false
    try {
      for (let k = keep - 1; k >= 1; k--) await renameIfThere(`${path}.${k}`, `${path}.${k + 1}`)
      await rename(path, `${path}.1`)
      moved = true
      await rename(fresh, path)
    } catch (err) {
      this.retryAt = Date.now() + ROTATE_RETRY_MS
      // The file goes back under its name, so the chain goes on where a restart looks for it.
      if (moved) await rename(`${path}.1`, path).catch(() => {})
      await next.close()
      await rm(fresh, { force: true })
      throw err
    }
    const old = this.handle
    this.handle = next
    this.size = 0
    await old.close()
    return true
  }

  async close (): Promise<void> {
    await this.handle.close()
  }
}

/** Whether the bytes from `at` start like a record (an incomplete one is cut; anything else is refused). */
async function startsRecord (handle: FileHandle, at: number): Promise<boolean> {
  const bytes = Buffer.alloc(RECORD_START.length)
  const { bytesRead } = await handle.read(bytes, 0, bytes.length, at)
  return bytes.subarray(0, bytesRead).equals(RECORD_START.subarray(0, bytesRead)) && bytesRead > 0
}

async function renameIfThere (from: string, to: string): Promise<void> {
  try {
    await rename(from, to)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

function headOf (line: string, path: string): ChainHead {
  const fields = chainFields(line)
  if (fields === undefined) throw new AuditFileError(`${path}: its last line is not an audit record (verify it with "audit verify", then move it away)`)
  return { seq: fields.seq, hash: lineHash(line) }
}

/** Where the chain stands after the newest rotated file (the file itself is empty). */
async function rotatedHead (path: string): Promise<ChainHead> {
  let handle: FileHandle
  try {
    handle = await open(`${path}.1`, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_HEAD
    throw err
  }
  try {
    const { line } = await lastLine(handle, (await handle.stat()).size)
    return line === undefined ? EMPTY_HEAD : headOf(line, `${path}.1`)
  } finally {
    await handle.close()
  }
}

/**
 * The last complete line, and where complete content ends (before an incomplete last line, which
 * has no newline yet). Reads back from the end until the last two newlines are found.
 */
async function lastLine (handle: FileHandle, size: number): Promise<{ line: string | undefined, end: number }> {
  const newlines: number[] = []
  for (let from = size; from > 0 && newlines.length < 2;) {
    if (size - from >= TAIL_MAX) throw new AuditFileError(`its last line is longer than ${TAIL_MAX} bytes: not an audit file`)
    const length = Math.min(TAIL_CHUNK, from)
    from -= length
    const chunk = Buffer.alloc(length)
    await handle.read(chunk, 0, length, from)
    for (let i = length - 1; i >= 0 && newlines.length < 2; i--) if (chunk[i] === NEWLINE) newlines.push(from + i)
  }
  const last = newlines[0]
  if (last === undefined) return { line: undefined, end: 0 }
  const start = (newlines[1] ?? -1) + 1
  const bytes = Buffer.alloc(last - start)
  await handle.read(bytes, 0, bytes.length, start)
  return { line: bytes.toString('utf8'), end: last + 1 }
}
