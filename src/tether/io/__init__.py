"""The only code that touches sockets: dialing, TLS, readiness waits, the idle watcher."""
