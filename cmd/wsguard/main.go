// Command wsguard is real-time messaging over WebSockets with the security
// done right by default. See README.md for a tour and docs/ for the rest.
package main

import (
	"os"

	"github.com/wsguard/wsguard/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}
