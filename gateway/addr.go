package gateway

import (
	"net"
	"strconv"
)

func splitHostPort(hp string) (string, uint32) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, 0
	}
	n, _ := strconv.ParseUint(p, 10, 16)
	return h, uint32(n)
}
