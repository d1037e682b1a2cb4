//go:build !linux

package main

// releaseExecutablePages does nothing where /proc/self/maps and
// MADV_DONTNEED are not at hand.
func releaseExecutablePages() {}
