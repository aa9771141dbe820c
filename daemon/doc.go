// Package daemon is `keepstate run`: one live firewall process around one
// firewall.Engine. It loads the configuration, opens the log files, restores the
// connection table saved by the previous run, starts a data plane (NFQUEUE in
// production, a fake in tests) and serves a local admin socket and, optionally,
// Prometheus metrics on a loopback address. On stop it saves the table and flushes
// the logs; the fail mode says what happens to the data plane's hooks.
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
// With --state, the table is written on every clean stop and every StateInterval
// while running (temporary file, fsync, rename; see checkpoint.go), and read back
// on start. The snapshot stores times as ages relative to the moment it was
// written; the daemon rebases them onto the file's modification time, so the time
// the daemon was down counts as idle time, as it would have had it kept running.
// Restored TCP connections relearn their windows (conntrack's "Taking connections
// over"), and those the rules in force refuse are closed.
//
// A marker beside the snapshot (MarkerSuffix), locked for the daemon's life and
// removed by a clean stop once the final snapshot is written, tells an unclean
// start (a crash, SIGKILL, power loss) from a clean one, and refuses a second
// daemon on the same --state. After an unclean start the snapshot may miss the
// connections of its last interval: RecoverAfterCrashSeconds then lets strict
// mode pick them up mid-stream for a while (firewall.Engine.RecoverUntil).
//
// A stop with fail closed leaves the data plane's hooks in place (Detach), so that
// nothing the firewall filters passes unfiltered until the next start; fail open
// removes them (Close); a stop for a restart always leaves them.
//
// # Admin protocol
//
// The socket (mode 0600, peers checked with SO_PEERCRED) speaks one JSON request
// per connection, one line each way: {"cmd":"status"} and the like, answered by
// {"ok":true,"result":{...}} or {"ok":false,"error":"...","errors":["file:line: ..."]}.
// Call is the client side.
package daemon
