// Command keepstate is a stateful firewall for Linux. All of its logic lives in
// internal/cli and the packages it calls; main only hands over the arguments.
package main

import (
	"os"

	"keepstate/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
