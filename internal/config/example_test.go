package config_test

import (
	"fmt"

	"github.com/wsguard/wsguard/internal/config"
)

func ExampleLoadBytes() {
	yml := []byte("public_url: https://chat.example.com\nlisten: \":443\"\n")
	c, err := config.LoadBytes("wsguard.yaml", yml, []string{"WSGUARD_LIMITS_MAX_MESSAGE_BYTES=32768"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.AllowedOrigins, c.Limits.MaxMessageBytes, c.Validate() == nil)
	// Output: [https://chat.example.com] 32768 true
}

func ExampleConfig_Validate() {
	c, _ := config.LoadBytes("wsguard.yaml", []byte("public_url: http://chat.example.com\nlisten: \":80\"\n"), nil)
	fmt.Println(c.Validate())
	// Output:
	// invalid configuration:
	//   public_url: "http://chat.example.com" is plain http, so WebSockets would be plain ws:// (allowed: https://...; plain http only with insecure_dev: true on a loopback listen)
}
