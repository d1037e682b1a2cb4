package main

import "strconv"

// Fuzz mode: calls hostcalls chosen at random, with arguments drawn from
// values that matter to bounds checks (null, the last addresses of the
// 32-bit space, lengths that wrap, random numbers, real buffers). The
// pointers the host reads from may point anywhere; those it writes to
// are a scratch buffer or out of memory, so that the plugin survives
// to report what it got. The host must answer every call, never panic.

var seed uint64

func rnd() uint32 {
	seed ^= seed << 13
	seed ^= seed >> 7
	seed ^= seed << 17
	return uint32(seed >> 16)
}

func pick(vs ...uint32) uint32 { return vs[rnd()%uint32(len(vs))] }

// fuzzArgs are the argument makers: read pointers, lengths, write
// targets and small values.
type fuzzArgs struct{ buf, scratch uint32 }

func (a fuzzArgs) r() uint32 { return pick(a.buf, 0, bad, 0xFFFFFFFF, rnd(), a.buf+1) }
func (a fuzzArgs) l() uint32 { return pick(0, 1, 4, rnd()%64, 0xFFFFFFFF, 0x80000000, rnd()) }
func (a fuzzArgs) w() uint32 { return pick(a.scratch, a.scratch+8, bad, 0xFFFFFFFE, 0x7FFFFFF0) }
func (a fuzzArgs) v() uint32 { return pick(0, 1, 2, 3, 4, 5, 6, 7, 8, rnd()) }

// fuzz makes n random hostcalls and returns a histogram of statuses.
func fuzz(id uint32, s uint64, n int) string {
	seed = s | 1
	buf := keep(encodeMap("x-a", "1", ":path", "/fuzz", "k", "v"))
	scratch := keep(make([]byte, 64))
	a := fuzzArgs{addr(buf), addr(scratch)}
	counts := map[uint32]int{}
	for range n {
		var st uint32
		switch rnd() % 30 {
		case 0:
			st = proxyLog(a.v()%6, a.r(), a.l())
		case 1:
			st = proxyGetLogLevel(a.w())
		case 2:
			st = proxyGetCurrentTimeNanoseconds(a.w())
		case 3:
			st = proxyGetBufferBytes(a.v(), a.v(), a.l(), a.w(), a.w())
		case 4:
			st = proxyGetBufferStatus(a.v(), a.w(), a.w())
		case 5:
			st = proxySetBufferBytes(a.v(), a.v(), a.l(), a.r(), a.l())
		case 6:
			st = proxyGetConfiguration(a.w(), a.w())
		case 7:
			st = proxyGetHeaderMapPairs(a.v(), a.w(), a.w())
		case 8:
			st = proxyGetHeaderMapSize(a.v(), a.w())
		case 9:
			st = proxySetHeaderMapPairs(a.v(), a.r(), a.l())
		case 10:
			st = proxyGetHeaderMapValue(a.v(), a.r(), a.l(), a.w(), a.w())
		case 11:
			st = proxyAddHeaderMapValue(a.v(), a.r(), a.l(), a.r(), a.l())
		case 12:
			st = proxyReplaceHeaderMapValue(a.v(), a.r(), a.l(), a.r(), a.l())
		case 13:
			st = proxyRemoveHeaderMapValue(a.v(), a.r(), a.l())
		case 14:
			st = proxyGetProperty(a.r(), a.l(), a.w(), a.w())
		case 15:
			st = proxySetProperty(a.r(), a.l(), a.r(), a.l())
		case 16:
			st = proxyGetSharedData(a.r(), a.l(), a.w(), a.w(), a.w())
		case 17:
			st = proxySetSharedData(a.r(), a.l(), a.r(), a.l(), a.v())
		case 18:
			st = proxyRegisterSharedQueue(a.r(), a.l(), a.w())
		case 19:
			st = proxyResolveSharedQueue(a.r(), a.l(), a.r(), a.l(), a.w())
		case 20:
			st = proxyEnqueueSharedQueue(a.v(), a.r(), a.l())
		case 21:
			st = proxyDequeueSharedQueue(a.v(), a.w(), a.w())
		case 22:
			st = proxyDefineMetric(a.v(), a.r(), a.l()%16, a.w())
		case 23:
			st = proxyGetMetric(a.v(), a.w())
		case 24:
			st = proxyIncrementMetric(a.v(), int64(rnd())-1<<31)
		case 25:
			st = proxyRecordMetric(a.v(), uint64(rnd()))
		case 26:
			st = proxyHTTPCall(a.r(), a.l(), a.r(), a.l(), a.r(), a.l(), a.r(), a.l(), a.v(), a.w())
		case 27:
			st = proxyGRPCCall(a.r(), a.l(), a.r(), a.l(), a.r(), a.l(), a.r(), a.l(), a.r(), a.l(), a.v(), a.w())
		case 28:
			st = proxySetEffectiveContext(a.v())
		case 29:
			st = proxyCallForeignFunction(a.r(), a.l(), a.r(), a.l(), a.w(), a.w())
		}
		counts[st]++
	}
	// Back on the stream, whatever the calls made effective.
	proxySetEffectiveContext(id)
	out := ""
	for st := uint32(0); st <= 12; st++ {
		if counts[st] > 0 {
			out += strconv.Itoa(int(st)) + ":" + strconv.Itoa(counts[st]) + " "
		}
	}
	return out
}
