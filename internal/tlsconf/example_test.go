package tlsconf_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/wsguard/wsguard/internal/tlsconf"
)

func ExampleServerConfig() {
	dir, _ := os.MkdirTemp("", "wsguard-example")
	defer os.RemoveAll(dir)
	certFile, keyFile, err := tlsconf.EnsureDevCA(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	certs, err := tlsconf.NewReloader(certFile, keyFile)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := tlsconf.ServerConfig(tlsconf.ProfileIntermediate, certs)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: tlsconf.Headers(http.NotFoundHandler(), false), TLSConfig: cfg}
	tlsconf.ServerTimeouts(srv, 10*time.Second)
	fmt.Println(cfg.NextProtos, srv.WriteTimeout)
	// Output: [http/1.1] 0s
}
