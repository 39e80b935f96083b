package driver

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/poolproof/poolproof/harness"
)

// ProtocolVersion is the version of the driver protocol this package
// speaks; it is sent in init and documented in docs/driver-protocol.md.
const ProtocolVersion = 1

// EnvProtocol is set to the protocol version in a driver's environment.
const EnvProtocol = "POOLPROOF_DRIVER_PROTOCOL"

// Message types.
const (
	typeInit     = "init"
	typeInitOK   = "init_ok"
	typeCall     = "call"
	typeResult   = "result"
	typeClose    = "close"
	typeCloseOK  = "close_ok"
	typeShutdown = "shutdown"
)

// initMessage is poolproof's first message.
type initMessage struct {
	Type     string          `json:"type"`
	Protocol int             `json:"protocol"`
	Services []initService   `json:"services"`
	Contract harness.Profile `json:"contract"`
}

type initService struct {
	Name    string `json:"name"`
	BaseURL string `json:"base_url"`
	CAFile  string `json:"ca_file"` // "" for plain http
}

// appendCall encodes a call message by hand: it is written for every
// call, and encoding/json's reflection over the header map cost more than
// the rest of the harness side's work per call.
func appendCall(b []byte, id int64, service string, req *http.Request, body []byte) []byte {
	b = append(b, `{"type":"call","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"service":`...)
	b = appendString(b, service)
	b = append(b, `,"method":`...)
	b = appendString(b, req.Method)
	b = append(b, `,"url":`...)
	b = appendString(b, req.URL.String())
	b = append(b, `,"headers":{`...)
	first := true
	for name, values := range req.Header {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, name)
		b = append(b, ":["...)
		for i, v := range values {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	if body != nil {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, body)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// inMessage is any message a driver prints; which fields count depends on
// Type. Fields poolproof does not know are ignored.
type inMessage struct {
	Type string `json:"type"`

	// init_ok
	Driver     string `json:"driver"`
	Library    string `json:"library"`
	Version    string `json:"version"`
	MetricsURL string `json:"metrics_url"`

	// result
	ID         *int64         `json:"id"`
	Status     int            `json:"status"`
	Headers    map[string]any `json:"headers"` // a string or a list of strings per name, see headerValues
	BodyLen    *int64         `json:"body_len"`
	BodySHA256 string         `json:"body_sha256"`
	Error      *wireError     `json:"error"`
}

type wireError struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// headerValues reads a header's values: a list of strings, or one string
// (what Node's and Python's header objects hold), taken as a list of one.
// The headers are decoded as any rather than through an UnmarshalJSON
// per value, which restarted the decoder for every header.
func headerValues(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

// wireClasses maps the protocol's error classes to the harness's.
var wireClasses = map[string]harness.ErrorClass{
	"timeout":        harness.ClassTimeout,
	"connect":        harness.ClassConnRefused,
	"reset":          harness.ClassReset,
	"eof":            harness.ClassEOF,
	"tls":            harness.ClassTLS,
	"pool_exhausted": harness.ClassPoolExhausted,
	"circuit_open":   harness.ClassCircuitOpen,
	"canceled":       harness.ClassCanceled,
	"other":          harness.ClassOther,
}

const wireClassList = "timeout, connect, reset, eof, tls, pool_exhausted, circuit_open, canceled, other"

// Info is what a driver said of itself in init_ok.
type Info struct {
	Driver     string // e.g. "python-requests-typical"
	Library    string // e.g. "requests"
	Version    string // the library's version
	MetricsURL string // optional
}

// String names the driver as a report does: "python-requests-typical
// (requests 2.31.0)".
func (i Info) String() string {
	lib := strings.TrimSpace(i.Library + " " + i.Version)
	switch {
	case i.Driver == "":
		return lib
	case lib == "":
		return i.Driver
	}
	return i.Driver + " (" + lib + ")"
}

// CallError is a call the driver answered with an error. It names its
// harness error class itself (harness.Classifier).
type CallError struct {
	Class   harness.ErrorClass
	Message string // the library's message
}

func (e *CallError) Error() string { return "driver: " + e.Class.String() + ": " + e.Message }

// PoolproofClass is the harness error class of the call.
func (e *CallError) PoolproofClass() string { return e.Class.String() }

// result is what the reader hands a waiting call: a response or an error.
type result struct {
	resp *http.Response
	err  error
}

// checkResult validates a result message and turns it into what Do
// returns; the error says what is wrong with it.
func checkResult(m *inMessage, req *http.Request) (result, error) {
	if m.Error != nil {
		if m.Status != 0 {
			return result{}, errors.New("a result has both a status and an error: send one")
		}
		class, ok := wireClasses[m.Error.Class]
		if !ok {
			return result{}, fmt.Errorf("error class %q is not one of %s", m.Error.Class, wireClassList)
		}
		return result{err: &CallError{Class: class, Message: m.Error.Message}}, nil
	}
	if m.Status < 100 || m.Status > 599 {
		return result{}, fmt.Errorf("status %d is not an HTTP status: send 100..599, or an error", m.Status)
	}
	if m.BodyLen == nil || *m.BodyLen < 0 {
		return result{}, errors.New("body_len is missing or negative: send the length of the body as read")
	}
	var rep harness.BodyReport
	rep.Len = *m.BodyLen
	if len(m.BodySHA256) != 2*len(rep.SHA256) {
		return result{}, errors.New("body_sha256 is not 64 hex digits: send the SHA-256 of the body as read")
	}
	if _, err := hex.Decode(rep.SHA256[:], []byte(m.BodySHA256)); err != nil {
		return result{}, errors.New("body_sha256 is not 64 hex digits: send the SHA-256 of the body as read")
	}
	header := make(http.Header, len(m.Headers))
	for k, v := range m.Headers {
		vs, ok := headerValues(v)
		if !ok {
			return result{}, fmt.Errorf("header %q: a header's value must be a string or a list of strings", k)
		}
		key := http.CanonicalHeaderKey(k)
		header[key] = append(header[key], vs...)
	}
	return result{resp: &http.Response{
		Status:        fmt.Sprintf("%d %s", m.Status, http.StatusText(m.Status)),
		StatusCode:    m.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          reportedBody{rep},
		ContentLength: rep.Len,
		Request:       req,
	}}, nil
}

// reportedBody is a response body the driver read: empty here, it reports
// the length and digest of what the driver read (harness.ReportedBody).
type reportedBody struct{ rep harness.BodyReport }

func (reportedBody) Read([]byte) (int, error)         { return 0, io.EOF }
func (reportedBody) Close() error                     { return nil }
func (b reportedBody) BodyReport() harness.BodyReport { return b.rep }
