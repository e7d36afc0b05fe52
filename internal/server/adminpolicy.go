package server

import (
	"net/netip"

	"github.com/wsguard/wsguard/internal/admin"
	"github.com/wsguard/wsguard/internal/config"
)

// adminPolicy builds the admin listener's policy from a validated admin
// section, reading the metrics token file once at start.
func adminPolicy(c config.Admin) (*admin.Policy, error) {
	p := &admin.Policy{Hosts: c.Hosts}
	for _, n := range c.MetricsNetworks {
		pr, err := netip.ParsePrefix(n)
		if err != nil { // a bare address, as Validate allows
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return nil, err
			}
			pr = netip.PrefixFrom(a, a.BitLen())
		}
		p.Networks = append(p.Networks, pr.Masked())
	}
	if c.MetricsTokenFile != "" {
		tok, err := admin.ReadToken(c.MetricsTokenFile)
		if err != nil {
			return nil, err
		}
		p.Token = tok
	}
	return p, nil
}
