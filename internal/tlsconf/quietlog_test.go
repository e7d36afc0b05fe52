package tlsconf

import (
	"io"
	"log"
)

// quietLog drops the server's handshake-failure logs, which the refusal
// tests provoke on purpose.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
