package atrest_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/wsguard/wsguard/internal/atrest"
)

func ExampleLoadOrCreateKey() {
	dir, _ := os.MkdirTemp("", "wsguard-example-")
	defer os.RemoveAll(dir)
	if _, err := atrest.Dir(dir); err != nil { // 0700
		panic(err)
	}
	s, created, err := atrest.LoadOrCreateKey(filepath.Join(dir, atrest.KeyFile)) // 0600
	if err != nil {
		panic(err)
	}
	sealed, _ := s.Seal("JBSWY3DPEHPK3PXP")
	plain, wasSealed, _ := s.Open(sealed)
	fmt.Println(created, wasSealed, plain)
	// Output: true true JBSWY3DPEHPK3PXP
}
