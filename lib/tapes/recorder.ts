/**
 * Records sessions to tapes: those the rules choose (by upstream, principal, client name) from
 * their first message, and any an admin starts. Watches traffic as an observer (lib/observer.ts),
 * so it sees every message both ways on every transport; each message is encoded as it passes (a
 * few µs) and written through a file stream, so the disk never holds a request. A tape is bounded in size (then it stops, saying so) and a slow disk drops entries
 * (counted) rather than growing memory.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, readdir, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { LRUCache } from 'lru-cache'
import type { Redactor } from '../audit/record.ts'
import { globMatcher, type GlobMatcher } from '../glob.ts'
import type { JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { Direction, ExchangeObserver } from '../observer.ts'
import type { SessionRecord } from '../session/store.ts'
import type { TapeHeader } from './tape.ts'

export interface TapeRule {
  upstreams?: string[] | undefined
  principals?: string[] | undefined
  clients?: string[] | undefined
}

export interface TapeRecorderOptions {
  dir: string
  rules: TapeRule[]
  maxBytes: number
  redactor: Redactor
  log: Logger
  /** The session's record, to match rules and head the tape. */
  find: (session: string) => Promise<SessionRecord | undefined>
}

export interface TapeInfo {
  id: string
  session: string
  upstream: string
  startedAt: string
  entries: number
  bytes: number
  dropped: number
  recording: boolean
}

interface Recording {
  info: TapeInfo
  stream: WriteStream
  started: number
}

/** Messages of a session not yet classified, kept until its record is read. */
const PENDING_MAX = 200
/** Entries waiting for a slow disk past this are dropped. */
const BACKLOG_MAX = 8 * 1024 * 1024
const SESSIONS_REMEMBERED = 10_000
/** Finished tapes listed with their details (older ones are listed by file only). */
const DONE_KEPT = 1000

export class TapeRecorder implements ExchangeObserver {
  private readonly options: TapeRecorderOptions
  private readonly rules: Array<{ upstreams?: GlobMatcher, principals?: GlobMatcher, clients?: GlobMatcher }>
  /** Per session: its recording, `false` when no rule chose it, or the messages waiting for its record. */
  private readonly sessions = new LRUCache<string, Recording | false | Array<[Direction, JsonRpcMessage, number]>>({
    max: SESSIONS_REMEMBERED,
    // A recording pushed out (ten thousand newer sessions) is finished: its file is closed. Only
    // the file: the cache must not be written to while it evicts.
    dispose: (state, _session, reason) => {
      if (reason === 'evict' && state !== false && !Array.isArray(state)) void this.complete(state)
    }
  })
  /** Tapes being opened, by session: a second start waits for the first. */
  private readonly opening = new Map<string, Promise<Recording>>()
  private readonly done: TapeInfo[] = []
  /** The last `initialize` each upstream answered: a tape starts with it (its own came before its session had an id). */
  private readonly initialize = new Map<string, { request: JsonRpcMessage | undefined, answer: JsonRpcMessage | undefined }>()

  constructor (options: TapeRecorderOptions) {
    this.options = options
    this.rules = options.rules.map((rule) => ({
      upstreams: rule.upstreams === undefined ? undefined : globMatcher(rule.upstreams),
      principals: rule.principals === undefined ? undefined : globMatcher(rule.principals),
      clients: rule.clients === undefined ? undefined : globMatcher(rule.clients)
    }))
  }

  message (direction: Direction, message: JsonRpcMessage, upstream: string, session?: string): void {
    if (session === undefined) {
      this.noteInitialize(direction, message, upstream)
      return
    }
    const state = this.sessions.get(session)
    if (state === false) return
    if (state === undefined) {
      if (this.rules.length === 0) {
        this.sessions.set(session, false)
        return
      }
      this.sessions.set(session, [[direction, message, Date.now()]])
      this.classify(session).catch((err: unknown) => {
        this.options.log.error({ err, session }, 'tapes: the tape could not be opened; the session is not recorded')
        this.sessions.set(session, false)
      })
      return
    }
    if (Array.isArray(state)) {
      if (state.length < PENDING_MAX) state.push([direction, message, Date.now()])
      return
    }
    this.write(state, direction, message, Date.now())
  }

  /** Starts a tape of a session now (the admin API): undefined when there is no such session. */
  async record (session: string): Promise<TapeInfo | undefined> {
    const opening = this.opening.get(session)
    if (opening !== undefined) return (await opening).info
    const current = this.sessions.get(session)
    if (current !== undefined && current !== false && !Array.isArray(current)) return current.info
    const record = await this.options.find(session)
    if (record === undefined) return undefined
    // A rule's tape may have opened meanwhile: that one goes on.
    const now = this.sessions.get(session)
    if (now !== undefined && now !== false && !Array.isArray(now)) return now.info
    return (await this.open(record, Array.isArray(now) ? now : [])).info
  }

  /** Stops a tape (by id), once its file is complete; false when it is not recording. */
  async stop (id: string): Promise<boolean> {
    for (const [session, state] of this.sessions.entries()) {
      if (state !== false && !Array.isArray(state) && state.info.id === id) {
        await this.finish(session, state)
        return true
      }
    }
    return false
  }

  /** The session ended: its tape is complete. */
  ended (session: string): void {
    const state = this.sessions.get(session)
    if (state !== undefined && state !== false && !Array.isArray(state)) void this.finish(session, state)
    this.sessions.delete(session)
  }

  /** Tapes recording now, and those in the folder. */
  async list (): Promise<TapeInfo[]> {
    const live = [...this.sessions.values()].filter((state): state is Recording => state !== false && !Array.isArray(state)).map((state) => state.info)
    const known = new Set([...live, ...this.done].map((info) => info.id))
    const files = await readdir(this.options.dir).catch(() => [] as string[])
    const others = await Promise.all(files.filter((name) => name.endsWith('.tape.jsonl') && !known.has(name.slice(0, -'.tape.jsonl'.length))).map(async (name) => {
      const bytes = (await stat(join(this.options.dir, name))).size
      return { id: name.slice(0, -'.tape.jsonl'.length), session: '', upstream: '', startedAt: '', entries: -1, bytes, dropped: 0, recording: false }
    }))
    return [...live, ...this.done, ...others]
  }

  /** A tape's file, when the id names one (ids are file names: nothing else is reachable). */
  pathOf (id: string): string | undefined {
    if (!/^[A-Za-z0-9_.-]+$/.test(id) || id.startsWith('.')) return undefined
    return join(this.options.dir, `${id}.tape.jsonl`)
  }

  async close (): Promise<void> {
    const open = [...this.sessions.entries()].filter((entry): entry is [string, Recording] => entry[1] !== false && !Array.isArray(entry[1]))
    await Promise.all(open.map(async ([session, state]) => { await this.finish(session, state) }))
  }

  private noteInitialize (direction: Direction, message: JsonRpcMessage, upstream: string): void {
    const { method, result } = message as { method?: string, result?: { serverInfo?: unknown } }
    if (direction === 'client_to_upstream' && method === 'initialize') this.initialize.set(upstream, { request: message, answer: undefined })
    else if (direction === 'upstream_to_client' && result?.serverInfo !== undefined) {
      const seen = this.initialize.get(upstream)
      if (seen !== undefined) seen.answer = message
    }
  }

  private async classify (session: string): Promise<void> {
    let record: SessionRecord | undefined
    try {
      record = await this.options.find(session)
    } catch (err) {
      this.options.log.warn({ err, session }, 'tapes: the session could not be read; not recorded')
    }
    const pending = this.sessions.get(session)
    if (!Array.isArray(pending)) return
    if (record === undefined || !this.chosen(record)) {
      this.sessions.set(session, false)
      return
    }
    await this.open(record, pending)
  }

  private chosen (record: SessionRecord): boolean {
    const client = typeof record.clientInfo?.name === 'string' ? record.clientInfo.name : ''
    return this.rules.some((rule) => (rule.upstreams?.test(record.upstream) ?? true) &&
      (rule.principals === undefined || (record.principal !== undefined && rule.principals.test(record.principal))) &&
      (rule.clients?.test(client) ?? true))
  }

  /** One opening per session at a time (an admin's start and a rule's may race). */
  private async open (record: SessionRecord, pending: Array<[Direction, JsonRpcMessage, number]>): Promise<Recording> {
    const opening = this.opening.get(record.id)
    if (opening !== undefined) return await opening
    const started = this.opened(record, pending).finally(() => { this.opening.delete(record.id) })
    this.opening.set(record.id, started)
    return await started
  }

  private async opened (record: SessionRecord, pending: Array<[Direction, JsonRpcMessage, number]>): Promise<Recording> {
    await mkdir(this.options.dir, { recursive: true })
    const started = pending[0]?.[2] ?? Date.now()
    const startedAt = new Date(started).toISOString()
    const id = `${startedAt.replace(/[:.]/g, '-')}-${record.id.slice(0, 12).replace(/[^A-Za-z0-9_-]/g, '_')}`
    const path = this.pathOf(id) as string
    const stream = createWriteStream(path, { flags: 'wx' })
    stream.on('error', (err) => { this.options.log.error({ err, tape: basename(path) }, 'tape could not be written') })
    const header: TapeHeader = { tape: 1, upstream: record.upstream, session: record.id, client: record.clientInfo ?? null, protocolVersion: record.protocolVersion, startedAt }
    stream.write(JSON.stringify(header) + '\n')
    const recording: Recording = { info: { id, session: record.id, upstream: record.upstream, startedAt, entries: 0, bytes: 0, dropped: 0, recording: true }, stream, started }
    this.sessions.set(record.id, recording)
    // The upstream's last initialize, when it came from a client of this one's name and version
    // (under concurrency it may be another's: two clients alike in both still cannot be told apart).
    const init = this.initialize.get(record.upstream)
    if (init?.request !== undefined && init.answer !== undefined && sameClient(init.request, record)) {
      this.write(recording, 'client_to_upstream', init.request, started)
      this.write(recording, 'upstream_to_client', init.answer, started)
    }
    for (const [direction, message, at] of pending) this.write(recording, direction, message, at)
    this.options.log.info({ tape: id, session: record.id, upstream: record.upstream }, 'tape recording')
    // The session ended while the file was opened: the tape is complete already.
    if (await this.options.find(record.id).then((found) => found === undefined, () => false)) await this.finish(record.id, recording)
    return recording
  }

  private write (recording: Recording, direction: Direction, message: JsonRpcMessage, at: number): void {
    const { info, stream } = recording
    if (stream.writableLength > BACKLOG_MAX) {
      info.dropped++
      return
    }
    const line = JSON.stringify({ t: at - recording.started, dir: direction === 'client_to_upstream' ? 'in' : 'out', message: this.redacted(message) }) + '\n'
    if (info.bytes + line.length > this.options.maxBytes) {
      this.options.log.warn({ tape: info.id, maxBytes: this.options.maxBytes }, 'tape reached its size limit: stopped')
      void this.finish(info.session, recording)
      return
    }
    info.bytes += line.length
    info.entries++
    stream.write(line)
  }

  /** Arguments (of calls and prompts) redacted, as the audit log's are; the rest as it was. */
  private redacted (message: JsonRpcMessage): JsonRpcMessage {
    const params = (message as { params?: { arguments?: unknown } }).params
    if (params?.arguments === undefined) return message
    return { ...message, params: { ...params, arguments: this.options.redactor.redact(params.arguments) } } as JsonRpcMessage
  }

  private async finish (session: string, recording: Recording): Promise<void> {
    // Nothing more of this session is taped.
    this.sessions.set(session, false)
    await this.complete(recording)
  }

  /** Ends a recording's file (once) and lists it as done. */
  private async complete (recording: Recording): Promise<void> {
    if (!recording.info.recording) return
    recording.info.recording = false
    this.done.push(recording.info)
    if (this.done.length > DONE_KEPT) this.done.shift()
    await new Promise<void>((resolve) => { recording.stream.end(() => { resolve() }) })
  }
}

function sameClient (initialize: JsonRpcMessage, record: SessionRecord): boolean {
  const info = (initialize as { params?: { clientInfo?: { name?: unknown, version?: unknown } } }).params?.clientInfo
  return info?.name === record.clientInfo?.name && info?.version === record.clientInfo?.version
}
