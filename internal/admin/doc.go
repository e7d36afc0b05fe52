// Package admin decides who the admin listener (admin_listen) answers.
//
// # Threat model
//
// The admin listener serves metrics, health and, when switched on,
// profiles, over plain HTTP, usually on loopback. Three attackers matter:
//
//   - A web page on the operator's machine that uses DNS rebinding: its
//     own name (evil.example) is made to resolve to 127.0.0.1, so the
//     browser sends the page's requests to the admin port with
//     Host: evil.example and lets the page read the answers. CheckHost
//     refuses every Host that is not a loopback name, an IP address or a
//     configured name (admin.hosts). An IP address is safe to answer: a
//     browser sends one only when the page itself was loaded from that
//     address, and no DNS answer an attacker controls is involved.
//   - A peer on the network, when admin_listen is bound wider than
//     loopback. CheckScrape serves metrics only to loopback peers, to
//     peers in admin.metrics_networks, and to requests bearing the token
//     of admin.metrics_token_file (compared in constant time).
//   - Anyone reading a heap profile, which holds session ids and secrets
//     in memory. Profiles are served only when admin.pprof is on, and then
//     to loopback peers only, token or not.
//
// Peers are judged by the socket address alone; X-Forwarded-For is never
// read, so a reverse proxy on the same host in front of the admin listener
// would make every request look local. The port in the Host header is not
// checked: a rebinding page cannot choose a loopback name, whatever port
// it names, and tunnels such as kubectl port-forward change the port.
//
// # Concurrency
//
// A Policy is read-only once built and safe for concurrent use.
package admin
