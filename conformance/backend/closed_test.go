package backend

import (
	"net"
	"testing"
	"time"
)

func TestClosedAddr(t *testing.T) {
	addr, err := ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection", addr)
	}
}
