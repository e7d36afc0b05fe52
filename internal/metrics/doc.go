// Package metrics holds wsguard's Prometheus collectors.
//
// Every collector lives on a private registry made by New, never on the
// global default one, so that embedding programs and parallel tests do not
// collide and nothing else registered in the process is exposed. wsguard's
// own metric names start with "wsguard_"; the Go runtime and process
// collectors keep their standard go_* and process_* names, so stock
// dashboards work unchanged.
//
// # Threat model
//
// Metrics reveal load, user activity and the security posture
// (wsguard_insecure_settings). They are served only on the admin listener,
// whose Host and peer checks live in package admin; LoopbackOnly is the
// plain loopback-peer check for embedders. Both judge the socket peer only,
// never forwarding headers; do not put a reverse proxy on the same host in
// front of the admin listener, or every request it forwards will look
// local. Label values come from code (outcomes, reasons,
// limit names, setting names), never from client input, so an attacker
// cannot grow the number of series.
//
// # Concurrency
//
// Collectors are safe for concurrent use; a *Metrics is built once and
// shared.
package metrics
