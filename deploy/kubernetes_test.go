package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/server"
	"github.com/wsguard/wsguard/internal/tlsconf"
)

// obj is one Kubernetes object as decoded from YAML.
type obj = map[string]any

// at walks m along path (map keys; a number indexes a list) and returns
// what is there, or nil.
func at(m any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, ok := m.(map[string]any)
			if !ok {
				return nil
			}
			m = mm[k]
		case int:
			l, ok := m.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			m = l[k]
		}
	}
	return m
}

func str(m any, path ...any) string { s, _ := at(m, path...).(string); return s }
func num(m any, path ...any) int    { n, _ := at(m, path...).(int); return n }
func list(m any, path ...any) []any { l, _ := at(m, path...).([]any); return l }

// manifests decodes every document of the files the kustomization lists,
// by "Kind/name".
func manifests(t *testing.T) map[string]obj {
	t.Helper()
	k := decodeFile(t, filepath.Join("kubernetes", "kustomization.yaml"))
	if len(k) != 1 {
		t.Fatalf("kustomization.yaml: %d documents", len(k))
	}
	out := map[string]obj{}
	for _, r := range list(k[0], "resources") {
		for _, o := range decodeFile(t, filepath.Join("kubernetes", r.(string))) {
			out[str(o, "kind")+"/"+str(o, "metadata", "name")] = o
		}
	}
	return out
}

func decodeFile(t *testing.T, path string) []obj {
	t.Helper()
	b, err := os.ReadFile(path) // #nosec G304 -- a file of this repository
	if err != nil {
		t.Fatal(err)
	}
	var docs []obj
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var o obj
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o != nil {
			docs = append(docs, o)
		}
	}
}

func need(t *testing.T, m map[string]obj, key string) obj {
	t.Helper()
	o, ok := m[key]
	if !ok {
		t.Fatalf("no %s in deploy/kubernetes", key)
	}
	return o
}

// mountedConfig returns the ConfigMap's wsguard.yaml, the environment the
// pod gives it (values of secretKeyRefs from secrets.example.yaml, plus
// the service links Kubernetes adds for the Service named wsguard), and
// the path WSGUARD_CONFIG names.
func mountedConfig(t *testing.T, m map[string]obj) (text string, env []string, path string) {
	t.Helper()
	sts := need(t, m, "StatefulSet/wsguard")
	secrets := map[string]obj{}
	for _, s := range decodeFile(t, filepath.Join("kubernetes", "secrets.example.yaml")) {
		secrets[str(s, "metadata", "name")] = s
	}
	c := wsguardContainer(t, sts)
	for _, e := range list(c, "env") {
		name := str(e, "name")
		switch {
		case str(e, "value") != "":
			env = append(env, name+"="+str(e, "value"))
		case at(e, "valueFrom", "secretKeyRef") != nil:
			ref := at(e, "valueFrom", "secretKeyRef")
			v := str(secrets[str(ref, "name")], "stringData", str(ref, "key"))
			if v == "" {
				t.Errorf("env %s: Secret %s has no key %s in secrets.example.yaml", name, str(ref, "name"), str(ref, "key"))
			}
			env = append(env, name+"="+v)
		}
	}
	// What Kubernetes injects for a Service named wsguard when service
	// links are on (the pod turns them off; the config must survive them
	// anyway, in case someone turns them back on).
	env = append(env, "WSGUARD_SERVICE_HOST=10.0.0.10", "WSGUARD_SERVICE_PORT=443", "WSGUARD_SERVICE_PORT_HTTPS=443",
		"WSGUARD_PORT=tcp://10.0.0.10:443", "WSGUARD_PORT_443_TCP=tcp://10.0.0.10:443", "WSGUARD_PORT_443_TCP_PROTO=tcp",
		"WSGUARD_PORT_443_TCP_PORT=443", "WSGUARD_PORT_443_TCP_ADDR=10.0.0.10")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "WSGUARD_CONFIG="); ok {
			path = v
		}
	}
	cm := need(t, m, "ConfigMap/wsguard-config")
	text = str(cm, "data", "wsguard.yaml")
	if text == "" {
		t.Fatal("ConfigMap wsguard-config has no wsguard.yaml")
	}
	mount := mountOf(t, sts, "config")
	if filepath.Join(mount, "wsguard.yaml") != path {
		t.Errorf("WSGUARD_CONFIG=%q, but the ConfigMap is mounted at %s", path, mount)
	}
	return text, env, path
}

func wsguardContainer(t *testing.T, sts obj) any {
	t.Helper()
	for _, c := range list(sts, "spec", "template", "spec", "containers") {
		if str(c, "name") == "wsguard" {
			return c
		}
	}
	t.Fatal("StatefulSet wsguard has no container named wsguard")
	return nil
}

// mountOf is where the wsguard container mounts the volume named vol.
func mountOf(t *testing.T, sts obj, vol string) string {
	t.Helper()
	for _, v := range list(wsguardContainer(t, sts), "volumeMounts") {
		if str(v, "name") == vol {
			if str(v, "subPath") != "" {
				t.Errorf("volume %s is mounted with subPath: updates to it never reach the pod", vol)
			}
			return str(v, "mountPath")
		}
	}
	t.Fatalf("container wsguard does not mount volume %s", vol)
	return ""
}

// loadMounted loads the mounted config as the pod would, with its
// environment (the shared store and broker URLs among it): the whole
// config must pass.
func loadMounted(t *testing.T, text string, env []string, dir string) config.Config {
	t.Helper()
	f := filepath.Join(dir, "wsguard.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadValid(f, env)
	if err != nil {
		t.Fatalf("the mounted config: %v", err)
	}
	return cfg
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// containerPort resolves a probe's or Service's port (a name or a number).
func containerPort(t *testing.T, c any, port any) int {
	t.Helper()
	if n, ok := port.(int); ok {
		return n
	}
	for _, p := range list(c, "ports") {
		if str(p, "name") == port {
			return num(p, "containerPort")
		}
	}
	t.Fatalf("container has no port named %v", port)
	return 0
}

// TestKubernetesManifests: three nodes, confined, draining before they
// stop, reading a config that passes wsguard's checks and files that the
// pod mounts.
func TestKubernetesManifests(t *testing.T) {
	m := manifests(t)
	sts := need(t, m, "StatefulSet/wsguard")
	pod := at(sts, "spec", "template", "spec")
	if n := num(sts, "spec", "replicas"); n != 3 {
		t.Errorf("replicas %d, want 3", n)
	}
	if at(pod, "automountServiceAccountToken") != false {
		t.Error("automountServiceAccountToken is not false: wsguard never calls the Kubernetes API")
	}
	psc := at(pod, "securityContext")
	if at(psc, "runAsNonRoot") != true || num(psc, "runAsUser") == 0 {
		t.Errorf("pod securityContext %v: want runAsNonRoot and a non-zero runAsUser", psc)
	}
	if str(psc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod seccompProfile %v, want RuntimeDefault", at(psc, "seccompProfile"))
	}
	containers := append(list(pod, "initContainers"), list(pod, "containers")...)
	for _, c := range containers {
		name := str(c, "name")
		sc := at(c, "securityContext")
		if at(sc, "allowPrivilegeEscalation") != false || at(sc, "readOnlyRootFilesystem") != true || at(sc, "privileged") == true {
			t.Errorf("container %s securityContext %v: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, not privileged", name, sc)
		}
		if d := list(sc, "capabilities", "drop"); len(d) != 1 || d[0] != "ALL" || at(sc, "capabilities", "add") != nil {
			t.Errorf("container %s capabilities %v: want drop [ALL] and nothing added", name, at(sc, "capabilities"))
		}
		if str(c, "resources", "requests", "memory") == "" || str(c, "resources", "limits", "memory") == "" {
			t.Errorf("container %s: want memory requests and limits", name)
		}
	}

	c := wsguardContainer(t, sts)
	text, env, _ := mountedConfig(t, m)
	cfg := loadMounted(t, text, env, t.TempDir())

	// Probes: readiness on /readyz, liveness on /healthz, on the port
	// wsguard listens on (TestKubernetesProbesServed asks a real server).
	listen := portOf(t, cfg.Listen)
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"} {
		g := at(c, probe, "httpGet")
		if str(g, "path") != path || str(g, "scheme") != "HTTPS" {
			t.Errorf("%s %v: want GET %s over HTTPS", probe, g, path)
		}
		if p := containerPort(t, c, at(g, "port")); p != listen {
			t.Errorf("%s on port %d, but listen is %q", probe, p, cfg.Listen)
		}
	}
	if p := containerPort(t, c, "admin"); cfg.AdminListen == "" || p != portOf(t, cfg.AdminListen) {
		t.Errorf("admin port %d, but admin_listen is %q", p, cfg.AdminListen)
	}

	// Stopping: wait for the endpoint to go (preStop), then drain within
	// drain_timeout, all inside the grace period.
	wait := num(c, "lifecycle", "preStop", "sleep", "seconds")
	if wait < 1 {
		t.Errorf("preStop %v: want a sleep before SIGTERM, so load balancers stop sending first", at(c, "lifecycle"))
	}
	grace := time.Duration(num(pod, "terminationGracePeriodSeconds")) * time.Second
	if need := time.Duration(wait)*time.Second + cfg.DrainTimeout.D(); grace <= need {
		t.Errorf("terminationGracePeriodSeconds %v: want more than preStop %ds + drain_timeout %v", grace, wait, cfg.DrainTimeout.D())
	}

	// Every file the config names is in a mounted Secret under that name;
	// data_dir is on the pod's own volume.
	secretKeys := map[string]map[string]bool{}
	for _, s := range decodeFile(t, filepath.Join("kubernetes", "secrets.example.yaml")) {
		keys := map[string]bool{}
		for k := range at(s, "stringData").(map[string]any) {
			keys[k] = true
		}
		secretKeys[str(s, "metadata", "name")] = keys
	}
	mounts := map[string]string{} // mount path -> Secret name
	for _, v := range list(pod, "volumes") {
		if s := str(v, "secret", "secretName"); s != "" {
			mounts[mountOf(t, sts, str(v, "name"))] = s
		}
	}
	files := map[string]string{"tls.cert_file": cfg.TLS.CertFile, "tls.key_file": cfg.TLS.KeyFile,
		"admin.metrics_token_file": cfg.Admin.MetricsTokenFile, "the sealing key": "/etc/wsguard/shared/secrets.key"}
	for i, k := range cfg.JWT.Keys {
		files[fmt.Sprintf("jwt.keys[%d].secret_file", i)] = k.SecretFile
	}
	for key, f := range files {
		secret := mounts[filepath.Dir(f)]
		if secret == "" || !secretKeys[secret][filepath.Base(f)] {
			t.Errorf("%s %q is not a key of a Secret mounted at %s", key, f, filepath.Dir(f))
		}
	}
	if cfg.TLS.CertFile == "" || len(cfg.TLS.ACMEDomains) > 0 {
		t.Error("tls: every node must serve the same certificate from files (no dev CA, no per-node ACME)")
	}
	data := mountOf(t, sts, "data")
	if !strings.HasPrefix(cfg.DataDir, data+"/") {
		t.Errorf("data_dir %q is not on the pod's volume %s", cfg.DataDir, data)
	}
	// The sealing key: secrets_key_file names the copy the init container
	// makes in data_dir, from the shared Secret.
	if want := "secrets_key_file: " + cfg.DataDir + "/secrets.key"; !strings.Contains(text, want) {
		t.Errorf("the ConfigMap lacks %q", want)
	}
	if s := initScript(t, sts); !strings.Contains(s, "dir="+cfg.DataDir+"\n") || !strings.Contains(s, `"$dir/secrets.key"`) {
		t.Errorf("the init container does not install the key at %s/secrets.key:\n%s", cfg.DataDir, s)
	}
	var claims []string
	for _, v := range list(sts, "spec", "volumeClaimTemplates") {
		claims = append(claims, str(v, "metadata", "name"))
	}
	if len(claims) != 1 || claims[0] != "data" {
		t.Errorf("volumeClaimTemplates %v: want one named data (each node's own audit log)", claims)
	}
	for _, p := range []string{"store", "broker"} {
		if !strings.Contains(strings.Join(env, "\n"), "WSGUARD_"+strings.ToUpper(p)+"=") {
			t.Errorf("the pod does not set WSGUARD_%s", strings.ToUpper(p))
		}
	}
	if v := strings.Join(env, "\n"); !strings.Contains(v, "WSGUARD_STORE=postgres://") || !strings.Contains(v, "WSGUARD_BROKER=redis") {
		t.Error("the example backends are not postgres:// and redis(s)://")
	}

	// The Service: any node, no affinity, client addresses kept; the
	// governing headless Service exists.
	svc := need(t, m, "Service/wsguard")
	if str(svc, "spec", "externalTrafficPolicy") != "Local" || str(svc, "spec", "sessionAffinity") != "None" {
		t.Errorf("Service wsguard: want externalTrafficPolicy Local (client addresses for per-IP limits) and sessionAffinity None")
	}
	if p := list(svc, "spec", "ports"); len(p) != 1 || containerPort(t, c, at(p[0], "targetPort")) != listen {
		t.Errorf("Service wsguard ports %v: want one, to the listen port", p)
	}
	need(t, m, "Service/"+str(sts, "spec", "serviceName"))
	pdb := need(t, m, "PodDisruptionBudget/wsguard")
	if num(pdb, "spec", "maxUnavailable") != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", at(pdb, "spec", "maxUnavailable"))
	}
	labels := at(sts, "spec", "template", "metadata", "labels").(map[string]any)
	for _, sel := range []any{at(pdb, "spec", "selector", "matchLabels"), at(svc, "spec", "selector"), at(sts, "spec", "selector", "matchLabels")} {
		for k, v := range sel.(map[string]any) {
			if labels[k] != v {
				t.Errorf("selector %v does not select the pods (labels %v)", sel, labels)
			}
		}
	}
}

// TestKubernetesProbesServed starts a real server with the mounted
// configuration (its files made in a temporary root; SQLite and the
// in-process broker in place of PostgreSQL and Redis, which the probe
// paths do not depend on) and asks it what the kubelet asks, the way the
// kubelet asks: by pod IP, without Origin. Each probe must answer 200; a
// path the server does not serve answers 404, so a misspelt probe would
// be caught.
func TestKubernetesProbesServed(t *testing.T) {
	m := manifests(t)
	text, env, _ := mountedConfig(t, m)
	root := t.TempDir()
	text = strings.ReplaceAll(text, " /etc/wsguard/", " "+root+"/etc/wsguard/")
	text = strings.ReplaceAll(text, " /var/lib/wsguard/", " "+root+"/var/lib/wsguard/")
	var local []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "WSGUARD_STORE=") && !strings.HasPrefix(kv, "WSGUARD_BROKER=") && !strings.HasPrefix(kv, "WSGUARD_CONFIG=") {
			local = append(local, kv)
		}
	}
	// The Secret files, as they would be mounted: the certificate from a
	// CA made for the test.
	shared := filepath.Join(root, "etc/wsguard/shared")
	tlsDir := filepath.Join(root, "etc/wsguard/tls")
	for _, d := range []string{shared, tlsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile, err := tlsconf.EnsureDevCA(filepath.Join(root, "ca"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{certFile: "tls.crt", keyFile: "tls.key"} {
		b, err := os.ReadFile(src) // #nosec G304 -- the test's own CA
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tlsDir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range map[string]string{"jwt-hs256.key": "0123456789abcdef0123456789abcdef", "metrics-token": "test-metrics-token-0123456789"} {
		if err := os.WriteFile(filepath.Join(shared, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := loadMounted(t, text, local, root)
	cfg.Identity.MaxHashing = 1
	// What the init container does before wsguard starts.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "secrets.key"), []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := server.CheckConfig(cfg); err != nil {
		t.Fatalf("server.CheckConfig of the mounted config: %v", err)
	}

	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, server.Listeners{Public: pub, Admin: adm}, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
		_ = srv.Close()
	})

	caPEM, err := os.ReadFile(filepath.Join(root, "ca", tlsconf.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}}}
	get := func(path string) (int, error) {
		req, err := http.NewRequest(http.MethodGet, "https://"+pub.Addr().String()+path, nil)
		if err != nil {
			return 0, err
		}
		req.Host = "10.244.1.7:8443" // the kubelet names the pod by its IP
		req.Header.Set("User-Agent", "kube-probe/1.31")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	c := wsguardContainer(t, need(t, m, "StatefulSet/wsguard"))
	deadline := time.Now().Add(20 * time.Second)
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		path := str(c, probe, "httpGet", "path")
		code, err := get(path)
		for (err != nil || code != http.StatusOK) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			code, err = get(path)
		}
		if err != nil || code != http.StatusOK {
			t.Errorf("%s GET %s: %d %v, want 200", probe, path, code, err)
		}
	}
	if code, err := get("/livez"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /livez: %d %v; want 404, or the probe check above proves nothing", code, err)
	}
}

// TestKubernetesSealingKeyInit runs the init container's script (with its
// paths moved into a temporary root): it installs the shared sealing key
// owner-only on a fresh volume, lets a node with the same key start, and
// refuses one whose volume holds another key instead of overwriting it.
func TestKubernetesSealingKeyInit(t *testing.T) {
	script := initScript(t, need(t, manifests(t), "StatefulSet/wsguard"))
	root := t.TempDir()
	script = strings.ReplaceAll(script, "/etc/wsguard/shared", root+"/shared")
	script = strings.ReplaceAll(script, "/var/lib/wsguard", root+"/volume")
	if err := os.MkdirAll(filepath.Join(root, "shared"), 0o700); err != nil {
		t.Fatal(err)
	}
	const key = "c2hhcmVkIHNlYWxpbmcga2V5IGZvciBldmVyeSBub2RlIQ==\n"
	if err := os.WriteFile(filepath.Join(root, "shared", "secrets.key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() ([]byte, error) {
		return exec.Command("/bin/sh", "-c", script).CombinedOutput() // #nosec G204 -- the manifest's own script, paths moved into a temporary dir
	}
	installed := filepath.Join(root, "volume", "data", "secrets.key")

	// A fresh volume: the key is installed, 0600, in a 0700 data_dir.
	if out, err := run(); err != nil {
		t.Fatalf("fresh volume: %v\n%s", err, out)
	}
	b, err := os.ReadFile(installed) // #nosec G304 -- the test's own file
	if err != nil || string(b) != key {
		t.Fatalf("installed key %q, %v; want the shared one", b, err)
	}
	if st, _ := os.Stat(installed); st.Mode().Perm() != 0o600 {
		t.Errorf("installed key mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(installed)); st.Mode().Perm() != 0o700 {
		t.Errorf("data_dir mode %v, want 0700", st.Mode().Perm())
	}
	// A restart with the same key starts.
	if out, err := run(); err != nil {
		t.Fatalf("restart with the same key: %v\n%s", err, out)
	}
	// A volume holding another key (a node that made its own): refused,
	// and the key on the volume is left as it was.
	const other = "b3RoZXIga2V5IG1hZGUgYnkgb25lIG5vZGUgYWxvbmUhIQ==\n"
	if err := os.WriteFile(installed, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run()
	if err == nil || !strings.Contains(string(out), "differs from the shared key") {
		t.Errorf("a different key on the volume: %v\n%s; want a refusal", err, out)
	}
	if b, _ := os.ReadFile(installed); string(b) != other { // #nosec G304 -- the test's own file
		t.Error("the init container overwrote the key on the volume")
	}
}

// initScript is the shell script of the init container sealing-key.
func initScript(t *testing.T, sts obj) string {
	t.Helper()
	for _, c := range list(sts, "spec", "template", "spec", "initContainers") {
		if str(c, "name") == "sealing-key" {
			cmd := list(c, "command")
			if len(cmd) != 3 || cmd[0] != "/bin/sh" || cmd[1] != "-c" {
				t.Fatalf("init container sealing-key command %v: want /bin/sh -c SCRIPT", cmd)
			}
			return cmd[2].(string)
		}
	}
	t.Fatal("no init container sealing-key")
	return ""
}
