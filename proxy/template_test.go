package proxy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTemplateRendersEveryPlaceholder(t *testing.T) {
	text := strings.Join([]string{
		"upstream inventory {",
		"    server {{inventory.each}} max_fails=1; # {{not.a.placeholder}}",
		"}",
		"upstream one_line { server {{inventory.each}} weight=2; keepalive 4; }",
		"# listen {{notification.listen}} is a comment",
		"server { listen {{ inventory.listen }}; error_log {{tempdir}}/x.log; }",
		"backend payment",
		"    server {{replica}} {{payment.each}} check",
		"    server first {{payment-0}} backup",
		"bind {{payment.listen}}",
	}, "\n")
	tmpl, err := parseTemplate("site.conf", text, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"payment", "inventory"}, tmpl.Services, "the fronted services, in fakeservers order; a commented-out one is not")

	r, err := tmpl.Render(Addresses{
		Listen:   map[string]string{"inventory": "127.0.0.1:1000", "payment": "127.0.0.1:2000"},
		Replicas: map[string][]string{"inventory": {"127.0.0.1:1001", "127.0.0.1:1002"}, "payment": {"127.0.0.1:2001", "127.0.0.1:2002"}},
		TempDir:  "/tmp/run",
	})
	require.NoError(t, err)
	assert.Equal(t, strings.Join([]string{
		"upstream inventory {",
		"    server 127.0.0.1:1001 max_fails=1; # {{not.a.placeholder}}",
		"    server 127.0.0.1:1002 max_fails=1; # {{not.a.placeholder}}",
		"}",
		"upstream one_line { server 127.0.0.1:1001 weight=2; server 127.0.0.1:1002 weight=2; keepalive 4; }",
		"# listen {{notification.listen}} is a comment",
		"server { listen 127.0.0.1:1000; error_log /tmp/run/x.log; }",
		"backend payment",
		"    server payment-0 127.0.0.1:2001 check",
		"    server payment-1 127.0.0.1:2002 check",
		"    server first 127.0.0.1:2001 backup",
		"bind 127.0.0.1:2000",
	}, "\n")+"\n", r.Text)
	assert.Equal(t, []int{1, 2, 2, 3, 4, 5, 6, 7, 8, 8, 9, 10}, r.Lines, "each rendered line points at the line of the user's file it came from")
}

func TestTemplateRefusesWrongPlaceholdersNamingTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"no listen", "server {{inventory-0}};", "has no {{<service>.listen}} placeholder"},
		{"typo before any listen", "listen {{inventory.listn}};", "site.conf:1: {{inventory.listn}}: unknown placeholder"},
		{"unknown service", "listen {{inventory.listen}};\nserver {{billing.each}};", "site.conf:2: {{billing.each}}: unknown placeholder"},
		{"a service's bare name", "listen {{inventory.listen}};\nserver {{inventory}};", "{{inventory}}: unknown placeholder: inventory's listen address is {{inventory.listen}}"},
		{"replica out of range", "listen {{inventory.listen}};\nserver {{inventory-3}};", "site.conf:2: {{inventory-3}}: there are 3 replicas of inventory: inventory-0 to inventory-2"},
		{"replicas of a service not fronted", "listen {{inventory.listen}};\nserver {{payment.each}};", "{{payment.each}}: payment has replicas only behind a proxy that listens for it: add {{payment.listen}}"},
		{"replica name outside a repeated directive", "listen {{inventory.listen}};\nserver {{replica}};", "site.conf:2: {{replica}} outside a directive with {{<service>.each}}"},
		{"two repeated directives on one line", "listen {{inventory.listen}}; listen {{payment.listen}};\nserver {{inventory.each}}; server {{payment.each}};", "site.conf:2: 2 {{<service>.each}} on one line: put each repeated directive on a line of its own"},
		{"replica name outside the repeated directive", "listen {{inventory.listen}};\nupstream {{replica}} { server {{inventory.each}}; }", "site.conf:2: {{replica}} outside a directive with {{<service>.each}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTemplate("site.conf", tc.text, 3)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestProxyMessagesAreOneLinePointingIntoTheUserFile(t *testing.T) {
	lines := []int{1, 2, 2, 2, 3, 4} // line 2 of the user's file was written three times
	nginxOut := "nginx: [emerg] unknown directive \"kepalive\" in /tmp/pp-1/poolproof-site.conf:5\nnginx: configuration file /tmp/pp-1/nginx.conf test failed\n"
	msg := pointIntoUserFile(nginx.message(nginxOut), "/tmp/pp-1/poolproof-site.conf", "proxies/site.conf", lines)
	assert.Equal(t, `nginx: [emerg] unknown directive "kepalive" in proxies/site.conf:3`, msg)

	haproxyOut := "[NOTICE]   (4242) : haproxy version is 2.6.12\n[ALERT]    (4242) : config : parsing [/tmp/pp-1/haproxy.cfg:4] : unknown keyword 'bogus' in 'backend' section\n[ALERT]    (4242) : config : Fatal errors found in configuration.\n"
	msg = pointIntoUserFile(haproxy.message(haproxyOut), "/tmp/pp-1/haproxy.cfg", "proxies/x.cfg", lines)
	assert.Equal(t, "[ALERT] config : parsing [proxies/x.cfg:2] : unknown keyword 'bogus' in 'backend' section", msg)

	assert.Equal(t, "something odd", nginx.message("\n  something   odd\nmore\n"), "without a complaint, the first line")
}
