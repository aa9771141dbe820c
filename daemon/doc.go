// Package daemon is `keepstate run`: one live firewall process around one
// firewall.Engine. It loads the configuration, opens the log files, restores the
// connection table saved by the previous run, starts a data plane (NFQUEUE in
// production, a fake in tests) and serves a local admin socket and, optionally,
// Prometheus metrics on a loopback address. On stop it removes the data plane's
// hooks, saves the table and flushes the logs.
//
// # Configuration changes
//
// A new configuration (an import over the socket, or SIGHUP re-reading --config)
// is compiled before anything changes: one that does not load changes nothing and
// the answer lists every problem as file:line. Engine.Apply swaps the ruleset
// atomically and keeps every tracked connection the new rules still permit.
//
// An import may ask for confirmation within a deadline: the new configuration is in
// force at once, but the previous one is kept, and unless `config confirm` arrives
// in time the daemon goes back to it by itself. That is the answer to the
// administrator of the first incident in the README, who could not change the
// firewall without risking his own session: a change that cuts the administrator
// off undoes itself. The configuration file (--config) is rewritten only once a
// change is confirmed, or at once when no confirmation was asked, so a restart
// always starts from a configuration somebody confirmed.
//
// # State across restarts
//
// With --state, the table is written on stop (temporary file, fsync, rename) and
// read back on start. The snapshot stores times as ages relative to the moment it
// was written; the daemon rebases them onto the file's modification time, so the
// time the daemon was down counts as idle time, as it would have had it kept
// running. The file is removed once restored: a crash later must not resurrect
// connections from an older run.
//
// # Admin protocol
//
// The socket (mode 0600, peers checked with SO_PEERCRED) speaks one JSON request
// per connection, one line each way: {"cmd":"status"} and the like, answered by
// {"ok":true,"result":{...}} or {"ok":false,"error":"...","errors":["file:line: ..."]}.
// Call is the client side.
package daemon
