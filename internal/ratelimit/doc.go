// Package ratelimit holds the flood controls: token buckets (Limiter),
// connection caps (Counter), temporary IP bans (Bans) and the login
// failure throttle (Throttle).
//
// # Threat model
//
// A client, or many clients behind one IP or one account, tries to exhaust
// the server (message, handshake and connection floods: SECURITY.md M4, M5) or to
// guess credentials (password brute force and spraying, TOTP guessing: I1,
// I4). Every type here answers in O(1) under one mutex, and every map is
// bounded: an attacker who invents keys (random usernames, rotating IPv6
// addresses) can make the tables forget old entries, never grow without
// bound. The trade-off is stated on each constructor: when a table is full
// the least recently used entry is forgotten, which at worst gives that key a
// fresh budget. Forgetting needs as many fresh keys as the table holds
// (100 000 by default) inside one refill period, and a key that is actively
// misbehaving is touched on every use, so it stays near the front.
//
// Limiter, Counter, Throttler and BanList are interfaces so that a shared
// Redis can enforce the same limits cluster-wide (Cluster, redis.go); the
// Local types, Throttle and Bans are the in-process
// implementations.
//
// # Time
//
// Every decision takes now as an argument, so tests drive time with
// clock.Fake and never sleep. A now earlier than a previous one (a clock
// stepped back) is treated as no time passing.
//
// # Concurrency
//
// All types are safe for concurrent use.
package ratelimit
