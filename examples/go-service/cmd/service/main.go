// Command service prints a greeting and the commit it was built from.
package main

import (
	"fmt"

	"example.com/service/pkg/greeting"
)

// Commit is set at build time: -ldflags "-X main.Commit=...".
var Commit = "unknown"

func main() {
	fmt.Println(greeting.For("BrewKit"), "(commit", Commit+")")
}
