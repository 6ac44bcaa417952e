/**
 * A stdio upstream's channel: one child process speaking newline-delimited JSON-RPC on its stdin
 * and stdout (the MCP stdio transport). Its stderr goes to the log line by line. A child that
 * writes anything but JSON-RPC to stdout is broken for good: it is killed, and its session ends.
 *
 * Stopping follows the MCP stdio transport's shutdown: close stdin and send SIGTERM, then SIGKILL
 * if the child is still there after the grace period.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { GatewayErrors } from '../errors.ts'
import { toMessages, type JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { LineSplitter, type MessageChannel } from './channel.ts'
import { withRaw } from './events.ts'

export interface StdioCommand {
  /** The program to run, found on PATH (`npx`, `node`, `uvx`, ...). */
  command: string
  /** @default [] */
  args?: string[]
  /**
   * Environment of the child, on top of a small safe base (PATH, HOME, USER, LOGNAME, SHELL, TERM,
   * LANG, TMPDIR and, on Windows, what programs need to start). The gateway's own environment is
   * not passed on: it may hold secrets the child has no business seeing.
   * @default {}
   */
  env?: Record<string, string>
  /** Working directory. @default the gateway's */
  cwd?: string
  /**
   * Time between SIGTERM and SIGKILL when a child is stopped.
   * @default 2000 ms
   */
  killGraceMs?: number
  /**
   * Longest line accepted on stdout; a longer one counts as garbage.
   * @default 16 MiB
   */
  maxLineBytes?: number
}

export const STDIO_DEFAULTS = { killGraceMs: 2000, maxLineBytes: 16 * 1024 * 1024 } as const

const BASE_ENV = process.platform === 'win32'
  ? ['APPDATA', 'HOMEDRIVE', 'HOMEPATH', 'LOCALAPPDATA', 'PATH', 'PROCESSOR_ARCHITECTURE', 'SYSTEMDRIVE', 'SYSTEMROOT', 'TEMP', 'USERNAME', 'USERPROFILE', 'PROGRAMFILES']
  : ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'LANG', 'TMPDIR']

function childEnv (extra: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = {}
  for (const key of BASE_ENV) {
    const value = process.env[key]
    // Exported shell functions are a known injection path into children: never pass them on.
    if (value !== undefined && !value.startsWith('()')) env[key] = value
  }
  return { ...env, ...extra }
}

/** Every child still running, so a process that exits can take them with it (`killStdioChildren`). */
const running = new Set<ChildProcessWithoutNullStreams>()

/**
 * SIGKILLs, synchronously, every stdio child this process started that is still running, and
 * returns how many. For the process's last moments (a shutdown past its budget, an 'exit'
 * handler): a child that ignores SIGTERM must not outlive the gateway, whatever `killGraceMs` says.
 */
export function killStdioChildren (): number {
  let killed = 0
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')) killed++
  }
  running.clear()
  return killed
}

/** Longest stderr line logged as it is; the rest is cut (a child cannot flood the log with one line). */
const STDERR_LINE_LIMIT = 8192

/**
 * Most bytes waiting for a child that does not read its stdin (past what its pipe and stream
 * buffer hold); past it, send() refuses with `UPSTREAM_BACKLOG` rather than grow without end.
 */
export const STDIN_BACKLOG_BYTES = 8 * 1024 * 1024

/**
 * Splits stderr into lines holding at most `limit` bytes of one: a longer line is handed on cut
 * (`truncated`) as soon as it passes the limit, and the rest of it, up to its newline, is skipped.
 */
class BoundedLines {
  private pieces: Buffer[] = []
  private bytes = 0
  /** Inside a line already handed on cut: bytes are dropped until its newline. */
  private skipping = false

  private readonly limit: number
  private readonly onLine: (line: Buffer, truncated: boolean) => void

  constructor (limit: number, onLine: (line: Buffer, truncated: boolean) => void) {
    this.limit = limit
    this.onLine = onLine
  }

  push (chunk: Buffer): void {
    let start = 0
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start)
      const end = newline === -1 ? chunk.length : newline
      if (!this.skipping) {
        const take = Math.min(end - start, this.limit - this.bytes)
        if (take > 0) {
          this.pieces.push(chunk.subarray(start, start + take))
          this.bytes += take
        }
        if (newline !== -1 && end - start <= take) {
          this.emit(false)
        } else if (this.bytes >= this.limit) {
          this.emit(true)
          this.skipping = newline === -1
        }
      } else if (newline !== -1) {
        this.skipping = false
      }
      if (newline === -1) break
      start = newline + 1
    }
  }

  flush (): void {
    if (this.bytes > 0) this.emit(false)
  }

  private emit (truncated: boolean): void {
    let line = Buffer.concat(this.pieces, this.bytes)
    this.pieces = []
    this.bytes = 0
    if (!truncated && line.length > 0 && line[line.length - 1] === 13) line = line.subarray(0, line.length - 1)
    if (line.length > 0) this.onLine(line, truncated)
  }
}

interface Waiting {
  text: string
  bytes: number
  resolve: () => void
  reject: (err: Error) => void
}

export class StdioChannel implements MessageChannel {
  onmessage: (message: JsonRpcMessage) => void = () => {}
  onclose: (reason: Error) => void = () => {}
  readonly pid: number
  /** When the child was started (ms since the epoch). */
  readonly startedAt = Date.now()
  private readonly child: ChildProcessWithoutNullStreams
  /** What its log lines carry; the session it serves is set when a spare is taken (`relabel`). */
  private readonly fields: { upstream: string, childPid: number, upstreamSessionId: string }
  private readonly name: string
  private readonly killGraceMs: number
  private gone: Error | undefined
  private readonly exited: Promise<void>
  /** The child's stdin said "full" (write() returned false): messages wait for 'drain'. */
  private blocked = false
  private readonly backlog: Waiting[] = []
  private backlogBytes = 0

  private constructor (child: ChildProcessWithoutNullStreams, name: string, options: StdioCommand, log: Logger, label: string) {
    this.child = child
    this.pid = child.pid as number
    this.name = name
    this.killGraceMs = options.killGraceMs ?? STDIO_DEFAULTS.killGraceMs
    const fields = this.fields = { upstream: name, childPid: this.pid, upstreamSessionId: label }

    const stdout = new LineSplitter(options.maxLineBytes ?? STDIO_DEFAULTS.maxLineBytes, (line) => {
      if (this.gone !== undefined) return
      let parsed: ReturnType<typeof toMessages>
      try {
        parsed = toMessages(JSON.parse(line.toString('utf8')))
      } catch {
        parsed = { ok: false, code: 0, message: 'not JSON' }
      }
      if (!parsed.ok) {
        log.error({ ...fields, line: line.subarray(0, 200).toString('utf8') }, 'stdio upstream wrote something other than JSON-RPC to stdout; stopping it')
        this.fail(new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, 'its process wrote something other than JSON-RPC to stdout'))
        return
      }
      // A lone message keeps its line: a response then goes to the client as the child wrote it.
      if (parsed.batch) for (const message of parsed.messages) this.onmessage(message)
      else this.onmessage(withRaw(parsed.messages[0] as JsonRpcMessage, line))
    })
    child.stdout.on('data', (chunk: Buffer) => {
      if (!stdout.push(chunk)) this.fail(new GatewayErrors.UPSTREAM_BAD_RESPONSE(name, 'its process wrote a line longer than the limit to stdout'))
    })
    const stderr = new BoundedLines(STDERR_LINE_LIMIT, (line, truncated) => {
      if (truncated) log.info({ ...fields, stderr: `${line.toString('utf8')}…`, truncated }, 'stdio upstream stderr')
      else log.info({ ...fields, stderr: line.toString('utf8') }, 'stdio upstream stderr')
    })
    child.stderr.on('data', (chunk: Buffer) => { stderr.push(chunk) })
    child.stderr.once('end', () => stderr.flush())
    // A child that dies leaves its stdin broken: writes fail with EPIPE, reported by 'exit' below.
    child.stdin.on('error', () => {})
    child.stdin.on('drain', () => { this.writeBacklog() })
    const stdoutEnded = new Promise<void>((resolve) => { child.stdout.once('close', resolve) })
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const how = signal === null ? `its process exited with code ${String(code)}` : `its process was killed by ${signal}`
        log.info({ ...fields, code, signal }, 'stdio upstream exited')
        // What the child wrote just before exiting is still delivered; a grandchild that holds
        // stdout open (a wrapper's child) does not hold the session up for long.
        const grace = setTimeout(() => child.stdout.destroy(), 200)
        void stdoutEnded.then(() => {
          clearTimeout(grace)
          stdout.flush()
          this.fail(new GatewayErrors.UPSTREAM_EXITED(name, how))
          resolve()
        })
      })
    })
  }

  /** Starts the child; rejects (with the gateway's error) when it cannot be started. */
  static async start (name: string, options: StdioCommand, log: Logger, label: string): Promise<StdioChannel> {
    const child = spawn(options.command, options.args ?? [], {
      cwd: options.cwd,
      env: childEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true
    })
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', (err) => {
        reject(new GatewayErrors.UPSTREAM_UNAVAILABLE(name, { cause: err }))
      })
    })
    running.add(child)
    child.once('exit', () => running.delete(child))
    return new StdioChannel(child, name, options, log, label)
  }

  /**
   * Writes at once while the child reads; once its stdin is full, the message waits (the promise
   * resolves when it is handed to the pipe), up to `STDIN_BACKLOG_BYTES`.
   */
  send (message: JsonRpcMessage): void | Promise<void> {
    if (this.gone !== undefined) throw this.gone
    const text = `${JSON.stringify(message)}\n`
    if (!this.blocked) {
      this.blocked = !this.child.stdin.write(text)
      return
    }
    const bytes = Buffer.byteLength(text)
    if (this.backlogBytes + bytes > STDIN_BACKLOG_BYTES) throw new GatewayErrors.UPSTREAM_BACKLOG(this.name, this.backlogBytes)
    this.backlogBytes += bytes
    return new Promise((resolve, reject) => { this.backlog.push({ text, bytes, resolve, reject }) })
  }

  /** On 'drain': what waits goes out, in order, until the pipe is full again. */
  private writeBacklog (): void {
    this.blocked = false
    while (!this.blocked && this.backlog.length > 0 && this.gone === undefined) {
      const next = this.backlog.shift() as Waiting
      this.backlogBytes -= next.bytes
      this.blocked = !this.child.stdin.write(next.text)
      next.resolve()
    }
  }

  async close (): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.stdin.end()
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => this.child.kill('SIGKILL'), this.killGraceMs)
      await this.exited
      clearTimeout(timer)
    }
  }

  kill (): void {
    this.child.kill('SIGKILL')
  }

  private readonly stopListeners: Array<() => void> = []

  /** Calls `listener` once the child is gone (at once if it is gone already). */
  whenStopped (listener: () => void): void {
    if (this.gone !== undefined) listener()
    else this.stopListeners.push(listener)
  }

  /** A spare child taken for a session: its log lines name the session from now on. */
  relabel (label: string): void {
    this.fields.upstreamSessionId = label
  }

  /** Whether the child is gone (exited, killed, or stopped for a reason). */
  get stopped (): boolean {
    return this.gone !== undefined
  }

  /**
   * Stops the child for a reason of the gateway's (its lifetime is over, its memory past the
   * ceiling): the session it serves ends with `reason`, and the child is closed politely.
   */
  retire (reason: Error): void {
    this.fail(reason)
  }

  /**
   * The child's resident memory in bytes, from `/proc/<pid>/status` (Linux); undefined where
   * there is no such file or the child is gone. The process the gateway started only: a wrapper's
   * own children (`npx` starting `node`) are not counted, so run the server's program directly.
   */
  async rssBytes (): Promise<number | undefined> {
    if (this.gone !== undefined) return undefined
    try {
      const status = await readFile(`/proc/${this.pid}/status`, 'utf8')
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
      return kb === undefined ? undefined : Number(kb) * 1024
    } catch {
      return undefined
    }
  }

  private fail (reason: Error): void {
    if (this.gone !== undefined) return
    this.gone = reason
    for (const waiting of this.backlog.splice(0)) waiting.reject(reason)
    this.backlogBytes = 0
    if (this.child.exitCode === null && this.child.signalCode === null) void this.close()
    this.onclose(reason)
    for (const listener of this.stopListeners.splice(0)) listener()
  }
}
