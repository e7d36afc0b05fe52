// Types for wsguard.js, the wsguard browser and Node client.

/** Codes the server answers a request with (docs/PROTOCOL.md, error codes). */
export type ServerErrorCode =
  | "bad_request"
  | "forbidden"
  | "not_found"
  | "rate_limited"
  | "too_large"
  | "unavailable";

/** Codes the client adds: for close codes, refused handshakes, timeouts. */
export type ClientErrorCode =
  | "timeout" // no answer within the request's timeout
  | "closed" // the client was closed (close()), or the server closed with 1000
  | "connection_lost" // the socket ended without a close code, or a request could not outlive it
  | "handshake_failed" // the socket closed before it opened: refused or unreachable
  | "credential_failed" // the ticket or token function threw, or the token bought no ticket
  | "going_away" // 1001: the server drains; the client reconnects at once
  | "protocol_error" // 1002, 1003, 1007: a client bug; the client stops
  | "policy" // 1008: too many invalid requests, idle timeout
  | "session_ended" // 4001: session ended or credential expired
  | "unauthorized"; // a token refused when exchanged for a ticket (HTTP 401)

export type ErrorCode = ServerErrorCode | ClientErrorCode;

/** WsguardError is what every promise rejects with and every "error" event carries. */
export class WsguardError extends Error {
  constructor(code: ErrorCode | string, message?: string, details?: { closeCode?: number; status?: number; op?: string; channel?: string; cause?: unknown });
  readonly name: "WsguardError";
  /** The server's code ("forbidden", ...) or the client's ("timeout", "session_ended", ...). */
  readonly code: ErrorCode | string;
  /** The WebSocket close code when the error comes from a closed socket (4001, 1008, ...). */
  readonly closeCode?: number;
  /** The HTTP status when a token was refused for a ticket. */
  readonly status?: number;
  /** The operation refused ("publish", "subscribe", ...). */
  readonly op?: string;
  /** The channel the refused request named. */
  readonly channel?: string;
}

export type ConnectionState = "connecting" | "connected" | "disconnected";

/**
 * How the socket authenticates:
 * - "session": the page's session cookie and the csrf-token meta tag (pages served by wsguard);
 * - { ticket }: a one-time ticket, fetched anew for every connection (pages on another origin);
 * - { token }: a JWT, exchanged for a ticket at every connection and called again on "expiring".
 */
export type Credential =
  | "session"
  | { ticket: () => string | Promise<string> }
  | { token: () => string | Promise<string> };

/** A WebSocket constructor: the browser's, Node's global one, or the ws package's. */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[]): WebSocketLike;
}

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // The client sets these; events carry data (message) and code, reason (close).
  onopen: any;
  onmessage: any;
  onclose: any;
  onerror: any;
}

export interface ClientOptions {
  /** Default "session". */
  credential?: Credential;
  /** Default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Used to exchange a token for a ticket. Default globalThis.fetch. */
  fetch?: (input: string, init?: any) => Promise<{ ok: boolean; status: number; json(): Promise<any> }>;
  /** Where a token buys its ticket. Default https://<host of url>/api/v1/tickets. */
  ticketURL?: string;
  /** The CSRF token for the "session" credential. Default: the page's csrf-token meta tag. */
  csrfToken?: string;
  /** Milliseconds a request waits for its answer, reconnects included. Default 10000. */
  timeout?: number;
  /** Reconnect delays: the ceiling starts at min and doubles to max, a random point in its upper half. Default 500 and 30000 ms. */
  backoff?: { min?: number; max?: number };
  /** Requests larger than this are refused before sending (too_large). Default 65536, the server's default. */
  maxMessageBytes?: number;
}

export interface RequestOptions {
  /** Milliseconds to wait for the answer. Default: the client's timeout. */
  timeout?: number;
}

export interface PublishOptions extends RequestOptions {
  /** Client message id; a retry with the same cid is stored once. Default: a random one. */
  cid?: string;
}

export interface Message<T = unknown> {
  channel: string;
  offset: number;
  from: string;
  ts: string;
  data: T;
}

export interface PresenceChange {
  channel: string;
  join: string[];
  leave: string[];
  /** More joined or left than listed: ask presence() for the whole list. */
  more: boolean;
}

export interface SubscribeOptions<T = unknown> {
  /** Replay what came after this offset; resumed automatically after reconnects. */
  since?: number;
  /** Each message once, in offset order. */
  onMessage?: (m: Message<T>) => void;
  /** After every resume with since: recovered false means the gap is older than retention; reload history. */
  onRecover?: (r: { recovered: boolean; offset: number }) => void;
  onPresence?: (p: PresenceChange) => void;
  /** The subscription was refused (forbidden, bad_request, ...) and ended. */
  onError?: (e: WsguardError) => void;
}

export class Subscription {
  readonly channel: string;
  /** The last offset delivered (or the channel's head when subscribed); resumes start after it. */
  readonly offset: number;
  /** Settles with the first answer to subscribe. */
  readonly ready: Promise<{ offset: number; recovered: boolean }>;
  unsubscribe(): Promise<void>;
}

export interface ClientEvents {
  state: ConnectionState;
  error: WsguardError;
  presence: PresenceChange;
  expiring: { in: number };
  refreshed: { expires: string };
}

export class Client {
  constructor(url: string, options?: ClientOptions);
  readonly state: ConnectionState;
  on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): void;
  subscribe<T = unknown>(channel: string, options?: SubscribeOptions<T>): Subscription;
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<{ offset: number; cid: string }>;
  history<T = unknown>(channel: string, options?: RequestOptions & { limit?: number; before?: number }): Promise<{ messages: Message<T>[]; more: boolean }>;
  presence(channel: string, options?: RequestOptions): Promise<string[]>;
  ping(options?: RequestOptions): Promise<void>;
  /** Any protocol operation; resolves with its result. */
  request(op: string, fields?: Record<string, unknown>, options?: RequestOptions): Promise<any>;
  close(): void;
}
