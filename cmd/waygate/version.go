package main

import (
	"fmt"
	"runtime/debug"
)

// version is set with -ldflags "-X main.version=..." by release builds.
var version = "dev"

func init() {
	register("version", "print the version", func([]string) int {
		rev := ""
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = " " + s.Key + "=" + s.Value
				}
			}
			fmt.Printf("waygate %s (%s)%s\n", version, bi.GoVersion, rev)
			return 0
		}
		fmt.Printf("waygate %s\n", version)
		return 0
	})
}
