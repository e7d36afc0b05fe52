package server

import (
	"net"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
)

// TestCheckConfigOpensNoBroker: checking a config with a Redis broker
// reads its URL and connects to nothing. (It used to open a broker it never
// closed, so every `wsguard serve` held a second Redis link for life.)
func TestCheckConfigOpensNoBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialled := make(chan struct{}, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			dialled <- struct{}{}
			_ = c.Close()
		}
	}()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Broker = "redis://" + l.Addr().String() + "/0?prefix=check:"
	if err := CheckConfig(cfg); err != nil {
		t.Fatalf("CheckConfig: %v", err)
	}
	select {
	case <-dialled:
		t.Fatal("CheckConfig connected to the broker")
	case <-time.After(300 * time.Millisecond):
	}
	cfg.Broker = "redis://r:6379/0?prefix=a%20b"
	if err := CheckConfig(cfg); err == nil {
		t.Fatal("CheckConfig accepted a bad broker prefix")
	}
}
