package driver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// Default bounds of the protocol (docs/driver-protocol.md).
const (
	DefaultInitTimeout  = 30 * time.Second // init -> init_ok
	DefaultCloseTimeout = 3 * time.Second  // close -> close_ok
	DefaultExitTimeout  = 2 * time.Second  // shutdown -> exit
)

// maxLine bounds a line the driver prints; a longer one is a protocol error
// rather than unbounded memory.
const maxLine = 1 << 20

// reapTimeout bounds the wait for a killed process group to be reaped and
// for its pipes to close.
const reapTimeout = 2 * time.Second

// Option tunes Start.
type Option func(*options)

type options struct {
	initTimeout  time.Duration
	closeTimeout time.Duration
	exitTimeout  time.Duration
	env          []string
	dir          string
}

// WithInitTimeout bounds the wait for init_ok (default 30s).
func WithInitTimeout(d time.Duration) Option { return func(o *options) { o.initTimeout = d } }

// WithCloseTimeout bounds the wait for close_ok (default 3s): a driver
// that does not answer within it is hung.
func WithCloseTimeout(d time.Duration) Option { return func(o *options) { o.closeTimeout = d } }

// WithExitTimeout bounds the wait for the driver to exit after shutdown
// (default 2s); then its process group is killed.
func WithExitTimeout(d time.Duration) Option { return func(o *options) { o.exitTimeout = d } }

// WithEnv adds KEY=VALUE variables to the driver's environment, which is
// otherwise this process's plus POOLPROOF_DRIVER_PROTOCOL.
func WithEnv(kv ...string) Option { return func(o *options) { o.env = append(o.env, kv...) } }

// WithDir runs the driver in dir (default: this process's directory).
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

func newOptions(opts []Option) options {
	o := options{initTimeout: DefaultInitTimeout, closeTimeout: DefaultCloseTimeout, exitTimeout: DefaultExitTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Process is a running driver: a harness.Client for every service it was
// started with (a call goes to the service whose base URL it names), a
// harness.IdleCloser (close), a harness.Closer (close, shutdown, exit) and
// a harness.LeakReporter (its process, read from /proc). It is safe for
// concurrent use.
type Process struct {
	cmdline  string
	o        options
	services map[string]string // scheme://host of a base URL -> service name
	caDir    string            // the CA files handed to the driver; removed at Close

	cmd    *exec.Cmd // nil when the session runs over plain pipes (tests)
	pid    int
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *tailBuffer

	out        chan []byte   // messages to write, in order; the writer owns stdin
	writerStop chan struct{} // closed at Close: the writer ends
	writerDone chan struct{}
	readerDone chan struct{}
	exited     chan struct{} // closed once the process is reaped
	exitErr    error         // its exit status, set before exited is closed

	nextID atomic.Int64

	mu        sync.Mutex
	pending   map[int64]chan result // a buffered channel per call not yet answered
	info      Info
	initOK    chan struct{} // closed at init_ok
	gotInit   bool
	closeOK   chan struct{} // set while a close awaits its close_ok
	shutting  bool          // shutdown was sent: EOF and exit are expected
	ended     chan struct{} // closed when the session ends; endErr says why
	endErr    error
	before    harness.ProcessCounts
	beforeErr error

	idleMu    sync.Mutex // one close at a time
	closeOnce sync.Once
	closeErr  error
}

var (
	_ harness.Client          = (*Process)(nil)
	_ harness.IdleCloser      = (*Process)(nil)
	_ harness.Closer          = (*Process)(nil)
	_ harness.LeakReporter    = (*Process)(nil)
	_ harness.MetricsGatherer = (*Process)(nil)
)

// Start runs the driver cmd (program and arguments) in its own process
// group, hands it services (their CAs as files) and profile in init, and
// waits (bounded by WithInitTimeout and ctx) for init_ok. It then measures
// the process, as the baseline its leaks are judged against. On any error
// nothing is left running.
func Start(ctx context.Context, cmd []string, services []harness.Service, profile harness.Profile, opts ...Option) (_ *Process, err error) {
	if len(cmd) == 0 || cmd[0] == "" {
		return nil, errors.New("driver: no command: give the program that runs your driver and its arguments")
	}
	if len(services) == 0 {
		return nil, errors.New("driver: no services: pass the environment's services")
	}
	p := newProcess(strings.Join(cmd, " "), newOptions(opts))
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	init, err := p.prepare(services, profile)
	if err != nil {
		return nil, err
	}
	if err := p.spawn(cmd); err != nil {
		return nil, err
	}
	if err := p.handshake(ctx, init); err != nil {
		return nil, err
	}
	p.before, p.beforeErr = processCounts(p.pid)
	return p, nil
}

func newProcess(cmdline string, o options) *Process {
	return &Process{
		cmdline:    cmdline,
		o:          o,
		services:   map[string]string{},
		stderr:     newTailBuffer(64 << 10),
		out:        make(chan []byte, 1024),
		writerStop: make(chan struct{}),
		writerDone: make(chan struct{}),
		readerDone: make(chan struct{}),
		exited:     make(chan struct{}),
		pending:    map[int64]chan result{},
		initOK:     make(chan struct{}),
		ended:      make(chan struct{}),
	}
}

// prepare writes the CA files and builds the init message.
func (p *Process) prepare(services []harness.Service, profile harness.Profile) (initMessage, error) {
	m := initMessage{Type: typeInit, Protocol: ProtocolVersion, Contract: harness.Profile{
		// Resolved: a driver reads its service's contract as Profile.For gives
		// it; a field left 0 was not declared.
		Default:  profile.For(""),
		Services: make(map[string]harness.Contract, len(services)),
	}}
	for _, s := range services {
		u, err := url.Parse(s.BaseURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return m, fmt.Errorf("driver: service %s: base URL %q is not scheme://host:port", s.Name, s.BaseURL)
		}
		p.services[u.Scheme+"://"+u.Host] = s.Name
		is := initService{Name: s.Name, BaseURL: s.BaseURL}
		if s.CAs != nil && len(s.CAPEM) == 0 {
			return m, fmt.Errorf("driver: service %s has a CA pool but no PEM: set harness.Service.CAPEM, a driver is handed its CA as a file", s.Name)
		}
		if len(s.CAPEM) > 0 {
			if p.caDir == "" {
				if p.caDir, err = os.MkdirTemp("", "poolproof-driver-"); err != nil {
					return m, fmt.Errorf("driver: a folder for the CA files: %w", err)
				}
			}
			is.CAFile = filepath.Join(p.caDir, s.Name+"-ca.pem")
			if err := os.WriteFile(is.CAFile, s.CAPEM, 0o600); err != nil {
				return m, fmt.Errorf("driver: writing the CA file of %s: %w", s.Name, err)
			}
		}
		m.Services = append(m.Services, is)
		m.Contract.Services[s.Name] = profile.For(s.Name)
	}
	return m, nil
}

// spawn starts the process in its own group with its pipes, and the
// goroutines that own them: writer, reader, and the one that reaps it.
func (p *Process) spawn(argv []string) error {
	c := exec.Command(argv[0], argv[1:]...)
	c.Dir = p.o.dir
	c.Env = append(append(os.Environ(), fmt.Sprintf("%s=%d", EnvProtocol, ProtocolVersion)), p.o.env...)
	c.SysProcAttr = sysProcAttr()
	c.Stderr = p.stderr
	// A grandchild that keeps stderr open must not keep Wait from
	// returning once the driver exited.
	c.WaitDelay = reapTimeout
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("driver: a pipe for stdin: %w", err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return fmt.Errorf("driver: a pipe for stdout: %w", err)
	}
	c.Stdin, c.Stdout = stdinR, stdoutW
	err = c.Start()
	// The child has its ends now (or never will): close ours of them, so
	// stdout reads EOF when the child and its descendants are gone.
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		return fmt.Errorf("driver: starting %q: %w: give the command that runs your driver, e.g. -driver \"python3 my_driver.py\"", p.cmdline, err)
	}
	p.cmd, p.pid = c, c.Process.Pid
	go func() {
		defer close(p.exited)
		p.exitErr = c.Wait()
		// The driver is gone; so must be anything it started in its group.
		killGroup(p.pid)
	}()
	p.run(stdinW, stdoutR)
	return nil
}

// run starts the writer and the reader over the driver's pipes.
func (p *Process) run(stdin io.WriteCloser, stdout io.ReadCloser) {
	p.stdin, p.stdout = stdin, stdout
	go p.writeLoop()
	go p.readLoop()
}

// handshake sends init and waits for init_ok.
func (p *Process) handshake(ctx context.Context, init initMessage) error {
	b, err := json.Marshal(init)
	if err != nil {
		return fmt.Errorf("driver: encoding init: %w", err)
	}
	if err := p.send(append(b, '\n')); err != nil {
		return err
	}
	t := time.NewTimer(p.o.initTimeout)
	defer t.Stop()
	select {
	case <-p.initOK:
		return nil
	case <-p.ended:
		return p.endErr
	case <-t.C:
		p.fail(ErrNoInitOK, fmt.Sprintf("it did not answer init within %v", p.o.initTimeout), nil)
		return p.endErr
	case <-ctx.Done():
		// Not the driver's fault: the session ends without a protocol error.
		err := fmt.Errorf("driver %q: waiting for init_ok: %w", p.cmdline, ctx.Err())
		if p.end(err) {
			killGroup(p.pid)
		}
		return err
	}
}

// Info is what the driver said of itself in init_ok.
func (p *Process) Info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// PID is the driver's process id (and process group id).
func (p *Process) PID() int { return p.pid }

// Stderr is the end (up to 64 KiB) of what the driver wrote on stderr.
func (p *Process) Stderr() string { return p.stderr.String() }

// Err is the error that ended the session: a *ProtocolError, ErrClosed
// after Close, nil while it runs.
func (p *Process) Err() error {
	select {
	case <-p.ended:
		return p.endErr
	default:
		return nil
	}
}

// Do sends the request to the driver as a call and waits for its result:
// a response whose body the driver read (empty here; it reports its length
// and SHA-256, see harness.ReportedBody), a *CallError, or the error that
// ended the session. It returns early with the request context's error;
// the driver's later answer is then dropped.
func (p *Process) Do(req *http.Request) (*http.Response, error) {
	service, ok := p.services[req.URL.Scheme+"://"+req.URL.Host]
	if !ok {
		return nil, fmt.Errorf("driver: %s is not the base URL of a service the driver was started with", req.URL.Scheme+"://"+req.URL.Host)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("driver: reading the request body: %w", err)
		}
	}
	id := p.nextID.Add(1)
	b := appendCall(make([]byte, 0, 512), id, service, req, body)
	done := make(chan result, 1)
	p.mu.Lock()
	select {
	case <-p.ended:
		p.mu.Unlock()
		return nil, p.endErr
	default:
	}
	p.pending[id] = done
	p.mu.Unlock()
	if err := p.send(b); err != nil {
		return nil, err
	}
	var r result
	select {
	case r = <-done:
	case <-p.ended:
		select { // an answer that came with the end still counts
		case r = <-done:
		default:
			return nil, p.endErr
		}
	case <-req.Context().Done():
		return nil, fmt.Errorf("driver: call %d: %w", id, req.Context().Err())
	}
	if r.resp != nil {
		r.resp.Request = req
	}
	return r.resp, r.err
}

// send queues one encoded message for the writer.
func (p *Process) send(msg []byte) error {
	select {
	case <-p.ended:
		return p.endErr
	default:
	}
	select {
	case p.out <- msg:
		return nil
	case <-p.ended:
		return p.endErr
	}
}

// writeLoop writes queued messages, as many as are waiting in one write:
// under concurrent calls that is one system call for many messages.
func (p *Process) writeLoop() {
	defer close(p.writerDone)
	var buf []byte
	for {
		select {
		case m := <-p.out:
			buf = append(buf[:0], m...)
		drain:
			for len(buf) < 64<<10 {
				select {
				case m := <-p.out:
					buf = append(buf, m...)
				default:
					break drain
				}
			}
			if _, err := p.stdin.Write(buf); err != nil {
				p.writeFailed(err)
				return
			}
		case <-p.writerStop:
			// What is still queued (shutdown last) is written, then the
			// writer ends; Close bounds the write by closing stdin.
			buf = buf[:0]
			for {
				select {
				case m := <-p.out:
					buf = append(buf, m...)
					continue
				default:
				}
				break
			}
			if len(buf) > 0 {
				_, _ = p.stdin.Write(buf)
			}
			return
		}
	}
}

// writeFailed ends the session when the driver stopped reading its stdin,
// unless the reader explains why first (it exited).
func (p *Process) writeFailed(err error) {
	t := time.NewTimer(reapTimeout)
	defer t.Stop()
	select {
	case <-p.readerDone:
	case <-p.ended:
	case <-p.writerStop:
	case <-t.C:
		p.fail(ErrExited, fmt.Sprintf("it stopped reading its stdin (%v)", err), nil)
	}
}

// readLoop reads the driver's stdout line by line until EOF or the first
// protocol error.
func (p *Process) readLoop() {
	defer close(p.readerDone)
	br := bufio.NewReaderSize(p.stdout, 64<<10)
	for {
		line, err := readLine(br)
		if errors.Is(err, errLineTooLong) {
			p.fail(ErrBadMessage, fmt.Sprintf("it printed a line longer than %d bytes, starting", maxLine), line)
			return
		}
		if err != nil {
			p.stdoutClosed(bytes.TrimSpace(line))
			return
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if kind, what := p.handle(line); kind != nil {
			p.fail(kind, what, line)
			return
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line (at most maxLine bytes); at EOF it returns what
// there was of an unterminated line with io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	buf := append([]byte(nil), line...)
	for {
		line, err = br.ReadSlice('\n')
		if len(buf)+len(line) > maxLine {
			return buf, errLineTooLong
		}
		buf = append(buf, line...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}

// handle acts on one message; a protocol error comes back as its kind and
// what the driver did.
func (p *Process) handle(line []byte) (error, string) {
	var m inMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return ErrBadMessage, fmt.Sprintf("it printed a line that is not a protocol message (%v)", err)
	}
	// A result is checked before the lock, which every call takes to
	// register itself.
	var (
		r    result
		rErr error
	)
	if m.Type == typeResult && m.ID != nil {
		r, rErr = checkResult(&m, nil)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.gotInit && m.Type != typeInitOK {
		return ErrBadMessage, fmt.Sprintf("it printed a %q message before init_ok", m.Type)
	}
	switch m.Type {
	case typeInitOK:
		if p.gotInit {
			return ErrBadMessage, "it printed init_ok twice"
		}
		p.gotInit = true
		p.info = Info{Driver: m.Driver, Library: m.Library, Version: m.Version, MetricsURL: m.MetricsURL}
		close(p.initOK)
	case typeResult:
		if m.ID == nil {
			return ErrBadMessage, "it printed a result without an id"
		}
		id := *m.ID
		done, ok := p.pending[id]
		switch {
		case !ok && id > 0 && id <= p.nextID.Load():
			return ErrUnknownCall, fmt.Sprintf("it answered call %d twice", id)
		case !ok:
			return ErrUnknownCall, fmt.Sprintf("it answered call %d, which it was never sent", id)
		}
		if rErr != nil {
			return ErrBadMessage, fmt.Sprintf("its result for call %d is invalid: %v", id, rErr)
		}
		delete(p.pending, id)
		done <- r
	case typeCloseOK:
		if p.closeOK == nil {
			return ErrBadMessage, "it printed close_ok without a close"
		}
		close(p.closeOK)
		p.closeOK = nil
	default:
		return ErrBadMessage, fmt.Sprintf("it printed a message of unknown type %q", m.Type)
	}
	return nil, ""
}

// stdoutClosed: the driver closed its stdout (exited, most likely). After
// shutdown that is the expected end; before, it is a crash, named with its
// exit status once the process is reaped.
func (p *Process) stdoutClosed(partial []byte) {
	p.mu.Lock()
	shutting := p.shutting
	p.mu.Unlock()
	if shutting && len(partial) == 0 {
		return
	}
	t := time.NewTimer(reapTimeout)
	defer t.Stop()
	status := "closed its stdout but did not exit"
	select {
	case <-p.exited:
		status = "exited"
		if p.exitErr != nil {
			status += " (" + p.exitErr.Error() + ")"
		} else {
			status += " with status 0"
		}
	case <-t.C:
	}
	p.mu.Lock()
	unanswered := len(p.pending)
	p.mu.Unlock()
	what := fmt.Sprintf("it %s before it was told to, with %d calls unanswered", status, unanswered)
	if len(partial) > 0 {
		what += "; its last line was cut short"
	}
	p.fail(ErrExited, what, partial)
}

// fail ends the session with a protocol error (the first one counts) and
// kills the driver's process group: nothing it does after is trusted.
func (p *Process) fail(kind error, what string, line []byte) {
	perr := &ProtocolError{Command: p.cmdline, PID: p.pid, Kind: kind, What: what, Stderr: p.stderr.lastLines(3, 300)}
	if line != nil {
		perr.Line = quoteLine(line)
	}
	if p.end(perr) {
		killGroup(p.pid)
	}
}

// end ends the session with err unless it already ended; every pending
// call wakes up and returns err. It reports whether err was the one.
func (p *Process) end(err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.ended:
		return false
	default:
	}
	p.endErr = err
	close(p.ended)
	return true
}

// CloseIdleConnections asks the driver to release its idle pooled
// connections (close) and waits, bounded by WithCloseTimeout, for
// close_ok: a driver that does not answer is hung, and ended.
func (p *Process) CloseIdleConnections() { _ = p.closeIdle() }

func (p *Process) closeIdle() error {
	p.idleMu.Lock()
	defer p.idleMu.Unlock()
	ok := make(chan struct{})
	p.mu.Lock()
	select {
	case <-p.ended:
		p.mu.Unlock()
		return p.endErr
	default:
	}
	p.closeOK = ok
	p.mu.Unlock()
	if err := p.send([]byte(`{"type":"close"}` + "\n")); err != nil {
		return err
	}
	t := time.NewTimer(p.o.closeTimeout)
	defer t.Stop()
	select {
	case <-ok:
		return nil
	case <-p.ended:
		return p.endErr
	case <-t.C:
		p.mu.Lock()
		unanswered := len(p.pending)
		p.mu.Unlock()
		p.fail(ErrHung, fmt.Sprintf("it did not answer close within %v (%d calls unanswered)", p.o.closeTimeout, unanswered), nil)
		return p.endErr
	}
}

// Close closes the idle connections (close), tells the driver to exit
// (shutdown, then EOF on its stdin), waits for it bounded by
// WithExitTimeout, then kills its process group and reaps it. Calls still
// pending return ErrClosed. It returns the protocol error that ended the
// driver, if any (a driver that does not exit in time, or not with status
// 0, is one). Safe to call more than once.
func (p *Process) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.shutdown() })
	return p.closeErr
}

func (p *Process) shutdown() error {
	defer func() {
		if p.caDir != "" {
			os.RemoveAll(p.caDir)
		}
	}()
	if p.stdin == nil { // never started
		p.end(ErrClosed)
		return nil
	}
	if p.Err() == nil {
		_ = p.closeIdle()
	}
	if p.Err() == nil {
		p.mu.Lock()
		p.shutting = true
		p.mu.Unlock()
		_ = p.send([]byte(`{"type":"shutdown"}` + "\n"))
	}
	// The writer writes what is queued (shutdown last) and ends; stdin is
	// then closed, which a driver also reads as shutdown.
	close(p.writerStop)
	p.waitBounded(p.writerDone, p.o.exitTimeout)
	p.stdin.Close()

	if p.cmd != nil {
		t := time.NewTimer(p.o.exitTimeout)
		select {
		case <-p.exited:
		case <-t.C:
			p.fail(ErrSlowExit, fmt.Sprintf("it did not exit within %v of shutdown; its process group was killed", p.o.exitTimeout), nil)
		}
		t.Stop()
		killGroup(p.pid)
		p.waitBounded(p.exited, reapTimeout)
		p.waitGroupGone()
		if p.Err() == nil && p.exitErr != nil {
			p.fail(ErrExited, fmt.Sprintf("it ended with %v at shutdown, not with status 0", p.exitErr), nil)
		}
	}
	// The reader ends at EOF once the group is gone; a descendant that left
	// the group could hold stdout open, so it is closed under it if need be.
	if !p.waitBounded(p.readerDone, reapTimeout) {
		p.stdout.Close()
		<-p.readerDone
	}
	p.stdout.Close()
	p.end(fmt.Errorf("%w: the driver %q was closed", ErrClosed, p.cmdline))
	if perr := (*ProtocolError)(nil); errors.As(p.endErr, &perr) {
		return perr
	}
	return nil
}

// waitGroupGone waits, bounded by reapTimeout, until the killed group's
// last process is gone: its grandchildren die and are reaped by init
// shortly after the kill, not at once.
func (p *Process) waitGroupGone() {
	deadline := time.Now().Add(reapTimeout)
	for !groupGone(p.pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *Process) waitBounded(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// ProcessLeaks measures the driver's process now against the counts taken
// after init_ok, before its first call (harness.LeakReporter).
func (p *Process) ProcessLeaks() harness.ProcessLeaks {
	pl := harness.ProcessLeaks{Command: p.cmdline, PID: p.pid, Client: p.Info().String(), Before: p.before, Stderr: p.stderr.lastLines(20, 4<<10)}
	var perr *ProtocolError
	if errors.As(p.Err(), &perr) {
		pl.Broken = perr.Error()
	}
	select {
	case <-p.exited:
		pl.Err = "the driver's process had exited"
		return pl
	default:
	}
	if p.beforeErr != nil {
		pl.Err = "its baseline could not be measured: " + p.beforeErr.Error()
		return pl
	}
	after, err := processCounts(p.pid)
	if err != nil {
		pl.Err = err.Error()
		return pl
	}
	pl.After, pl.Measured = after, true
	return pl
}
