package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// Placeholders a proxy configuration names poolproof's addresses with, in
// place of hostnames and ports (see proxies/README.md):
//
//	{{inventory.listen}}   where the proxy listens for inventory: the client calls it there
//	{{inventory-0}}        replica 0 of inventory (host:port, through its own Toxiproxy proxy)
//	{{inventory.each}}     the directive holding it is written once per replica, with this replica's host:port
//	{{replica}}            in such a directive: the replica's name, e.g. inventory-0 (a server name)
//	{{tempdir}}            a folder poolproof owns for the proxy's run (sockets, logs)
//
// Any service of fakeservers.Services can stand for inventory. A service
// whose listen placeholder appears is fronted: it runs as replicas behind
// the proxy. The directive an {{inventory.each}} repeats reaches, on its
// line, from the ';', '{' or '}' before it to the ';' after it (nginx's
// "server ...;" inside "upstream x { ... }"), else the whole line (HAProxy's
// "server" lines). Placeholders after a '#' that starts a comment are left
// alone.
const (
	suffixListen   = ".listen"
	suffixEach     = ".each"
	placeReplica   = "replica"
	placeTempDir   = "tempdir"
	placeholderSet = "{{<service>.listen}}, {{<service>-<n>}}, {{<service>.each}} (with {{replica}}), {{tempdir}}"
)

// notFronted: a placeholder names the replicas of a service the
// configuration does not listen for.
type notFronted struct{ svc string }

func (e notFronted) Error() string {
	return fmt.Sprintf("%s has replicas only behind a proxy that listens for it: add {{%s.listen}}", e.svc, e.svc)
}

var placeholder = regexp.MustCompile(`\{\{\s*([^{}\s]*)\s*\}\}`)

// Template is a proxy configuration read from a user's file, with its
// placeholders found and checked.
type Template struct {
	// Path is the file as the user named it; messages point there.
	Path string
	// Services are the services the configuration fronts (it names their
	// listen placeholder), in fakeservers.Services order.
	Services []string
	// Replicas is how many replicas each fronted service runs as.
	Replicas int
	lines    []string
}

// ParseTemplate reads the configuration at path and checks its
// placeholders against replicas replicas per fronted service. Errors wrap
// ErrInvalidConfig and name the file and line.
func ParseTemplate(path string, replicas int) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return parseTemplate(path, string(b), replicas)
}

func parseTemplate(path, text string, replicas int) (*Template, error) {
	if replicas < 1 {
		return nil, fmt.Errorf("%w: %d replicas: want at least 1", ErrInvalidConfig, replicas)
	}
	t := &Template{Path: path, Replicas: replicas, lines: strings.Split(text, "\n")}
	type use struct {
		line int
		name string
	}
	var uses []use
	fronted := map[string]bool{}
	for i, line := range t.lines {
		code, _ := splitComment(line)
		eaches := 0
		for _, m := range placeholder.FindAllStringSubmatch(code, -1) {
			name := m[1]
			uses = append(uses, use{i + 1, name})
			if svc, ok := strings.CutSuffix(name, suffixListen); ok && slices.Contains(fakeservers.Services, svc) {
				fronted[svc] = true
			}
			if strings.HasSuffix(name, suffixEach) {
				eaches++
			}
		}
		if eaches > 1 {
			return nil, t.errorf(i+1, "%d {{<service>.each}} on one line: put each repeated directive on a line of its own", eaches)
		}
		start, end, _ := eachDirective(code)
		for _, loc := range placeholder.FindAllStringSubmatchIndex(code, -1) {
			if code[loc[2]:loc[3]] == placeReplica && (loc[0] < start || loc[1] > end) {
				return nil, t.errorf(i+1, "{{replica}} outside a directive with {{<service>.each}}: it names the replica that directive is written for")
			}
		}
	}
	for _, svc := range fakeservers.Services {
		if fronted[svc] {
			t.Services = append(t.Services, svc)
		}
	}
	if len(t.Services) == 0 {
		for _, u := range uses {
			if err := t.checkName(u.name); err != nil && !errors.As(err, new(notFronted)) {
				return nil, t.errorf(u.line, "{{%s}}: %s", u.name, err)
			}
		}
		return nil, fmt.Errorf("%w: %s has no {{<service>.listen}} placeholder: put {{inventory.listen}} where the proxy listens for inventory (placeholders: %s)",
			ErrInvalidConfig, path, placeholderSet)
	}
	for _, u := range uses {
		if err := t.checkName(u.name); err != nil {
			return nil, t.errorf(u.line, "{{%s}}: %s", u.name, err)
		}
	}
	return t, nil
}

// checkName says what is wrong with one placeholder's name, nil when nothing.
func (t *Template) checkName(name string) error {
	if name == placeReplica || name == placeTempDir {
		return nil
	}
	svc, what, dotted := strings.Cut(name, ".")
	switch {
	case !slices.Contains(fakeservers.Services, svc) && dotted:
		return fmt.Errorf("unknown placeholder: use %s, where <service> is one of %s", placeholderSet, strings.Join(fakeservers.Services, ", "))
	case dotted && "."+what != suffixListen && "."+what != suffixEach:
		return fmt.Errorf("unknown placeholder: use %s", placeholderSet)
	case "."+what == suffixListen:
		return nil
	case !dotted:
		s, n, ok := harness.ReplicaOf(name)
		if !ok || !slices.Contains(fakeservers.Services, s) {
			if slices.Contains(fakeservers.Services, name) {
				return fmt.Errorf("unknown placeholder: %s's listen address is {{%s.listen}}, its replicas {{%s}} or {{%s.each}}", name, name, harness.ReplicaName(name, 0), name)
			}
			return fmt.Errorf("unknown placeholder: use %s, where <service> is one of %s", placeholderSet, strings.Join(fakeservers.Services, ", "))
		}
		if n >= t.Replicas {
			return fmt.Errorf("there are %d replicas of %s: %s to %s", t.Replicas, s, harness.ReplicaName(s, 0), harness.ReplicaName(s, t.Replicas-1))
		}
		svc = s
	}
	if !slices.Contains(t.Services, svc) {
		return notFronted{svc}
	}
	return nil
}

func (t *Template) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%w: %s:%d: %s", ErrInvalidConfig, t.Path, line, fmt.Sprintf(format, args...))
}

// Addresses are what the placeholders stand for in one rendering.
type Addresses struct {
	Listen   map[string]string   // by fronted service: host:port the proxy listens on
	Replicas map[string][]string // by fronted service: host:port of each replica, in order
	TempDir  string
}

// Rendered is a configuration with its placeholders replaced; Lines maps
// each of its lines (0-based) to the line of the user's file it came from
// (1-based), so the proxy's messages can point into the user's file.
type Rendered struct {
	Text  string
	Lines []int
}

// Render replaces the placeholders with a.
func (t *Template) Render(a Addresses) (Rendered, error) {
	var out Rendered
	var b strings.Builder
	emit := func(src int, line string) {
		b.WriteString(line)
		b.WriteByte('\n')
		out.Lines = append(out.Lines, src)
	}
	for i, line := range t.lines {
		code, comment := splitComment(line)
		start, end, each := eachDirective(code)
		if each == "" {
			code, err := t.replace(code, a, "", "")
			if err != nil {
				return Rendered{}, t.errorf(i+1, "%v", err)
			}
			emit(i+1, code+comment)
			continue
		}
		reps := a.Replicas[each]
		if len(reps) == 0 {
			return Rendered{}, t.errorf(i+1, "no replica address for %s", each)
		}
		before, err := t.replace(code[:start], a, "", "")
		if err != nil {
			return Rendered{}, t.errorf(i+1, "%v", err)
		}
		after, err := t.replace(code[end:], a, "", "")
		if err != nil {
			return Rendered{}, t.errorf(i+1, "%v", err)
		}
		var ones []string
		for r, addr := range reps {
			one, err := t.replace(code[start:end], a, addr, harness.ReplicaName(each, r))
			if err != nil {
				return Rendered{}, t.errorf(i+1, "%v", err)
			}
			ones = append(ones, one)
		}
		if strings.TrimSpace(before) == "" && strings.TrimSpace(after) == "" {
			// A directive alone on its line: a line per replica.
			for _, one := range ones {
				emit(i+1, before+one+after+comment)
			}
			continue
		}
		emit(i+1, before+strings.Join(ones, "")+after+comment)
	}
	out.Text = b.String()
	return out, nil
}

// replace fills the placeholders of one line; each and replica are this
// line's replica address and name when it repeats per replica.
func (t *Template) replace(code string, a Addresses, each, replica string) (string, error) {
	var err error
	out := placeholder.ReplaceAllStringFunc(code, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		switch {
		case name == placeTempDir:
			return a.TempDir
		case name == placeReplica && replica != "":
			return replica
		case strings.HasSuffix(name, suffixEach):
			return each
		case strings.HasSuffix(name, suffixListen):
			svc := strings.TrimSuffix(name, suffixListen)
			if addr := a.Listen[svc]; addr != "" {
				return addr
			}
		default:
			if svc, n, ok := harness.ReplicaOf(name); ok && n < len(a.Replicas[svc]) {
				return a.Replicas[svc][n]
			}
		}
		err = fmt.Errorf("no address for {{%s}}", name)
		return m
	})
	return out, err
}

// eachDirective finds, in a line's code, the directive an
// {{<service>.each}} repeats: code[start:end], for service svc ("" when
// the line has none).
func eachDirective(code string) (start, end int, svc string) {
	locs := placeholder.FindAllStringSubmatchIndex(code, -1)
	// The braces of the placeholders themselves delimit nothing.
	plain := []byte(code)
	for _, loc := range locs {
		for k := loc[0]; k < loc[1]; k++ {
			plain[k] = ' '
		}
	}
	for _, loc := range locs {
		s, ok := strings.CutSuffix(code[loc[2]:loc[3]], suffixEach)
		if !ok {
			continue
		}
		start = bytes.LastIndexAny(plain[:loc[0]], ";{}") + 1
		end = len(code)
		if j := bytes.IndexByte(plain[loc[1]:], ';'); j >= 0 {
			end = loc[1] + j + 1
		}
		return start, end, s
	}
	return 0, 0, ""
}

// splitComment splits a line at the '#' that starts its comment (at the
// line's start or after a space or tab), which both nginx and HAProxy use.
func splitComment(line string) (code, comment string) {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i], line[i:]
		}
	}
	return line, ""
}
