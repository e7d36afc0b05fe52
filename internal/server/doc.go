// Package server wires wsguard together: it builds every component from a
// config.Config and serves the browser pages, the WebSocket endpoint, the
// service API and the health checks.
//
// Request path: TLS listener -> security headers -> router. Browser routes
// (forms) pass Go's CrossOriginProtection and a synchronizer CSRF token;
// /ws passes the handshake guard, then becomes a conn.Conn feeding the hub,
// which writes to the store and fans out through the broker.
package server
