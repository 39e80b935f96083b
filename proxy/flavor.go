package proxy

import (
	"bufio"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Kinds of proxy poolproof starts.
const (
	Nginx   = "nginx"
	HAProxy = "haproxy"
)

// Kinds lists the proxies poolproof can start.
var Kinds = []string{Nginx, HAProxy}

// NginxWorkers is how many worker processes poolproof runs nginx with.
// nginx keeps its upstream connections per worker (keepalive N caps each
// worker's idle ones), so the count is fixed to keep verdicts the same on
// every machine.
const NginxWorkers = 2

// flavor is how one kind of proxy is configured, checked, run and heard.
type flavor struct {
	kind string
	// files writes what the proxy reads into dir, the rendered user
	// configuration at userConf among them, and returns the file to run.
	files func(dir, userConf string) (string, error)
	check func(dir, conf string) []string // arguments that only check the configuration
	run   func(dir, conf string) []string // arguments that run it in the foreground
	// userFile is the name the rendered user configuration gets in dir.
	userFile string
	// message finds the proxy's own complaint in what it printed.
	message func(out string) string
}

func flavorOf(kind string) (flavor, bool) {
	switch kind {
	case Nginx:
		return nginx, true
	case HAProxy:
		return haproxy, true
	}
	return flavor{}, false
}

// pidFile is where the proxy writes its main process id, in its folder.
func pidFile(dir, kind string) string { return filepath.Join(dir, kind+".pid") }

// nginx runs with the user's file included in the http context of a main
// configuration poolproof writes: in the foreground, with its pid, logs
// and temporary files in the run's folder, as the current user. The user's
// file is what /etc/nginx/conf.d/ holds: upstream and server blocks and
// http-level settings.
var nginx = flavor{
	kind:     Nginx,
	userFile: "poolproof-site.conf",
	files: func(dir, userConf string) (string, error) {
		run := ""
		if os.Geteuid() == 0 {
			// As root, nginx would run its workers as "nobody".
			u, err := user.Current()
			if err != nil {
				return "", fmt.Errorf("nginx: who is the current user: %w", err)
			}
			g, err := user.LookupGroupId(u.Gid)
			if err != nil {
				return "", fmt.Errorf("nginx: the current user's group: %w", err)
			}
			run = fmt.Sprintf("user %s %s;\n", u.Username, g.Name)
		}
		main := fmt.Sprintf(`# Written by poolproof: nginx's main context around the configuration
# under test, which is included in http {} below.
daemon off;
master_process on;
worker_processes %d;
%spid %s;
error_log %s warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;
    include %s;
}
`, NginxWorkers, run, pidFile(dir, Nginx), filepath.Join(dir, "error.log"),
			filepath.Join(dir, "client_body"), filepath.Join(dir, "proxy"), filepath.Join(dir, "fastcgi"),
			filepath.Join(dir, "uwsgi"), filepath.Join(dir, "scgi"), userConf)
		path := filepath.Join(dir, "nginx.conf")
		return path, os.WriteFile(path, []byte(main), 0o600)
	},
	// -e: nginx opens its compiled-in error log (/var/log/nginx) before it
	// reads any configuration; -p: relative paths land in the run's folder.
	check: func(dir, conf string) []string {
		return []string{"-t", "-q", "-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", conf}
	},
	run: func(dir, conf string) []string {
		return []string{"-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", conf}
	},
	message: func(out string) string { return firstLine(out, nginxComplaint, nil) },
}

var nginxComplaint = regexp.MustCompile(`\[(emerg|alert|crit|error)\]`)

// haproxy runs the user's configuration as it is, in the foreground
// (-db), as the current user, writing its pid in the run's folder.
var haproxy = flavor{
	kind:     HAProxy,
	userFile: "haproxy.cfg",
	files:    func(dir, userConf string) (string, error) { return userConf, nil },
	check:    func(dir, conf string) []string { return []string{"-c", "-f", conf} },
	run:      func(dir, conf string) []string { return []string{"-db", "-p", pidFile(dir, HAProxy), "-f", conf} },
	message: func(out string) string {
		// "[ALERT]    (4242) : config : parsing [f.cfg:13] : unknown keyword ..."
		return firstLine(out, haproxyComplaint, haproxyPID)
	},
}

var (
	haproxyComplaint = regexp.MustCompile(`\[ALERT\]`)
	haproxyPID       = regexp.MustCompile(`^\[ALERT\]\s+\(\d+\)\s*:?\s*`)
)

// firstLine is the first line of out that complaint matches, with strip
// removed and its spaces collapsed; the first non-empty line when none
// matches.
func firstLine(out string, complaint, strip *regexp.Regexp) string {
	fallback := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if fallback == "" {
			fallback = line
		}
		if complaint.MatchString(line) {
			if strip != nil {
				line = strip.ReplaceAllString(line, "[ALERT] ")
			}
			return strings.Join(strings.Fields(line), " ")
		}
	}
	return strings.Join(strings.Fields(fallback), " ")
}

// pointIntoUserFile rewrites, in a message of the proxy, the rendered
// file's path and line into the user's file and its line.
func pointIntoUserFile(msg, rendered, user string, lines []int) string {
	re := regexp.MustCompile(regexp.QuoteMeta(rendered) + `(:(\d+))?`)
	return re.ReplaceAllStringFunc(msg, func(m string) string {
		sub := re.FindStringSubmatch(m)
		if sub[2] == "" {
			return user
		}
		n, err := strconv.Atoi(sub[2])
		if err != nil || n < 1 || n > len(lines) {
			return user + sub[1]
		}
		return fmt.Sprintf("%s:%d", user, lines[n-1])
	})
}
