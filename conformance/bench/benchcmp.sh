#!/bin/sh
# benchcmp.sh compares the Go benchmarks of two commits with benchstat.
#
#   conformance/bench/benchcmp.sh OLD NEW [packages...]
#   COUNT=10 BENCH='ProxyEmptyChain|Direct|Match10k' conformance/bench/benchcmp.sh HEAD~3 HEAD ./gateway/...
#
# Each commit is checked out in a temporary worktree (the working tree is
# left alone). The two sides run alternately, one -count at a time, so
# drift on a shared machine (another build, a thermal change) lands on
# both rather than on whichever side ran second; -p 1 keeps packages'
# benchmarks from running at the same time. old.txt and new.txt are left
# in $OUT (default: a temporary directory) for benchstat or a later look.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 OLD NEW [packages...]   (env: COUNT=10 BENCH=. OUT=dir)" >&2
	exit 2
fi
old=$1
new=$2
shift 2
[ $# -gt 0 ] || set -- ./gateway/...
count=${COUNT:-10}
bench=${BENCH:-.}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
work=$(mktemp -d)
cleanup() {
	git worktree remove --force "$work/old" 2>/dev/null || true
	git worktree remove --force "$work/new" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

git worktree add --detach -q "$work/old" "$old"
git worktree add --detach -q "$work/new" "$new"
: >"$out/old.txt"
: >"$out/new.txt"
i=1
while [ "$i" -le "$count" ]; do
	for side in old new; do
		echo "run $i/$count: $side" >&2
		(cd "$work/$side" && go test -p 1 -run '^$' -bench "$bench" -benchmem -count 1 "$@") >>"$out/$side.txt"
	done
	i=$((i + 1))
done

echo "results in $out/old.txt and $out/new.txt" >&2
if command -v benchstat >/dev/null 2>&1; then
	benchstat "$out/old.txt" "$out/new.txt"
else
	go run golang.org/x/perf/cmd/benchstat@latest "$out/old.txt" "$out/new.txt"
fi
