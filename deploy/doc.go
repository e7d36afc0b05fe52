// Package deploy holds no code: it is the home of the container image
// (Dockerfile), the systemd unit (wsguard.service) and the Kubernetes
// manifests (kubernetes/), and of the tests that keep them honest. The
// tests build the binary the way the Dockerfile does and check that it is
// static, run `systemd-analyze verify` on the unit, and parse every
// manifest, asserting the security-relevant fields and that the
// configuration they mount passes wsguard's own checks.
package deploy
