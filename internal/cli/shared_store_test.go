package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/atrest"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/store/pgtest"
	"github.com/wsguard/wsguard/internal/tlsconf"
)

// TestUserAddOnSharedStore: the CLI acts on the shared store, with the
// key every node is given, so a user it adds exists for every node; without
// the key file it refuses and makes none.
func TestUserAddOnSharedStore(t *testing.T) {
	dir := t.TempDir()
	dbURL := pgtest.NewDatabase(t)
	keyFile := filepath.Join(dir, "shared.key")
	cfgFile := filepath.Join(dir, "node.yaml")
	certFile, tlsKeyFile, err := tlsconf.EnsureDevCA(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := "data_dir: " + filepath.Join(dir, "data") + "\nstore: " + dbURL + "\nsecrets_key_file: " + keyFile +
		"\ntls: {cert_file: " + certFile + ", key_file: " + tlsKeyFile + "}\n"
	if err := os.WriteFile(cfgFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addUser := func() (int, string) {
		var out, errb bytes.Buffer
		code := Main([]string{"user", "add", "alice", "--password-stdin", "--config", cfgFile}, strings.NewReader("correct horse battery\n"), &out, &errb, nil)
		return code, errb.String()
	}
	if code, errOut := addUser(); code == 0 || !strings.Contains(errOut, "secrets_key_file") {
		t.Fatalf("user add without the shared key: exit %d, %s; want a refusal naming secrets_key_file", code, errOut)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Fatalf("the CLI made the shared key: %v", err)
	}
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, errOut := addUser(); code != 0 {
		t.Fatalf("user add: exit %d, %s", code, errOut)
	}
	sealer, err := atrest.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	node, err := store.OpenPostgres(context.Background(), dbURL, store.PostgresOptions{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	if u, err := node.UserByName(t.Context(), "alice"); err != nil || u.PasswordHash == "" {
		t.Fatalf("a node on the shared store does not see the user: %+v, %v", u, err)
	}
}
