//go:build linux

package main

import (
	"bufio"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
)

// releaseExecutablePages unmaps the resident pages of this executable's
// read-only mappings (code, read-only data, the pc tables) with
// MADV_DONTNEED. The writable data segment is left alone: its pages may
// hold changes that only the process has.
func releaseExecutablePages() {
	for _, m := range executableMappings() {
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED)
	}
}

type mapping struct{ start, end uintptr }

// executableMappings are the read-only file mappings of the file that
// holds this function's code, found in /proc/self/maps.
func executableMappings() []mapping {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	type entry struct {
		m           mapping
		perms, file string
	}
	var entries []entry
	pc := reflect.ValueOf(executableMappings).Pointer()
	file := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 {
			continue
		}
		lo, hi, ok := strings.Cut(fs[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		e := entry{mapping{uintptr(a), uintptr(b)}, fs[1], fs[4] + " " + strings.Join(fs[5:], " ")}
		if pc >= e.m.start && pc < e.m.end {
			file = e.file
		}
		entries = append(entries, e)
	}
	var out []mapping
	for _, e := range entries {
		if file != "" && e.file == file && !strings.Contains(e.perms, "w") {
			out = append(out, e.m)
		}
	}
	return out
}
