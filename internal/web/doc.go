// Package web renders wsguard's browser pages and serves the embedded
// static assets (style sheet and the chat client). It owns no routes for
// sessions or forms: the server package decides who may see a page and
// hands Render the data to show.
//
// # Threat model
//
// Every string in PageData may come from an attacker (a username, a user
// agent, an error echoing input). Templates are html/template, so each value
// is escaped for the context it lands in; nothing is ever marked safe except
// TOTPQR, a data: URL the server builds itself from a PNG it encoded.
//
// Pages are served under a strict Content-Security-Policy (script-src
// 'self', style-src 'self', no inline anything), so the templates carry no
// inline script, no style attributes and no event-handler attributes; a
// test greps the rendered pages and the scripts to keep it that way. The
// chat page's script (static/app.js) writes user-controlled text (names,
// channel names, message bodies) only through textContent, never as
// markup: a message "<img src=x onerror=...>" shows as those characters
// (C6). It is built on the browser client served at /client/wsguard.js
// (clients/js), which owns the socket; Static serves app.js with that
// import pinned to this build's client (the client is cached immutable).
//
// Pages are rendered into a buffer first, so a template failure answers a
// clean 500 instead of half a page, and every page is Cache-Control:
// no-store because it carries a CSRF token.
//
// # Concurrency
//
// New parses every template once at start and fails fast on an error.
// A *Pages is immutable afterwards and safe for concurrent use; Static
// returns a handler over read-only embedded files, also safe to share.
package web
