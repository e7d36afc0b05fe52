package client_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"os"

	client "github.com/wsguard/wsguard/clients/go"
)

// A backend service subscribes with an API key, trusting the server's CA
// and pinning its key.
func ExampleDial() {
	roots := x509.NewCertPool()
	if pem, err := os.ReadFile("wsguard-data/tls/ca.pem"); err == nil {
		roots.AppendCertsFromPEM(pem)
	}
	key := os.Getenv("WSGUARD_API_KEY")
	c, err := client.Dial(context.Background(), client.Config{
		URL:     "wss://localhost:8443/ws",
		RootCAs: roots,
		Token:   func(context.Context) (string, error) { return key, nil },
	})
	if err != nil {
		log.Print(err)
		return
	}
	defer c.Close()
	if err := c.Subscribe(context.Background(), "news:eu"); err != nil {
		log.Print(err)
		return
	}
	for m := range c.Messages() {
		fmt.Println(m.Channel, m.Offset, string(m.Data))
	}
}
