package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/poolproof/poolproof/fakeservers"
)

// ErrInvalidProfile is wrapped by the errors of ParseProfile and
// LoadProfile; the message names the field.
var ErrInvalidProfile = errors.New("invalid contract")

// LoadProfile reads the contract file at path; see ParseProfile.
func LoadProfile(path string) (Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, fmt.Errorf("contract file %s: %w", path, err)
	}
	p, err := ParseProfile(data)
	if err != nil {
		return Profile{}, fmt.Errorf("contract file %s: %w", path, err)
	}
	return p, nil
}

// ParseProfile reads a contract file, JSON or YAML, in the shape of Profile
// with Contract's field names:
//
//	{"http2":    false,
//	 "default":  {"max_conns": 8, "pool_wait": "250ms", "request_timeout": "2s"},
//	 "services": {"payment": {"max_attempts": 1}}}
//
// http2 (Profile.HTTP2, optional) declares that the client speaks HTTP/2.
// Durations are written like "250ms" or "2s" (a number is nanoseconds, as
// Contract's JSON writes it). A field a service's entry leaves out is
// taken from "default", not from DefaultContract: a file says what differs
// per service. Unknown fields and services are rejected; every error
// names the field's path (services.payment.pool_wait).
func ParseProfile(data []byte) (Profile, error) {
	doc, err := decodeDocument(data)
	if err != nil {
		return Profile{}, fmt.Errorf("%w: %w", ErrInvalidProfile, err)
	}
	top, err := asObject("", doc)
	if err != nil {
		return Profile{}, fmt.Errorf(`%w: %w: write {"default": {...}, "services": {"payment": {...}}}`, ErrInvalidProfile, err)
	}
	var (
		p       Profile
		written = map[string][]int{} // service -> indexes of the Contract fields its entry sets
	)
	for _, key := range sortedKeys(top) {
		switch key {
		case "default":
			if p.Default, _, err = parseContract("default", top[key]); err != nil {
				return Profile{}, err
			}
		case "services":
			services, err := asObject("services", top[key])
			if err != nil {
				return Profile{}, fmt.Errorf("%w: %w", ErrInvalidProfile, err)
			}
			p.Services = make(map[string]Contract, len(services))
			for _, name := range sortedKeys(services) {
				if !slices.Contains(fakeservers.Services, name) {
					return Profile{}, fmt.Errorf("%w: services.%s: unknown service: use %s", ErrInvalidProfile, name, strings.Join(fakeservers.Services, ", "))
				}
				if p.Services[name], written[name], err = parseContract("services."+name, services[name]); err != nil {
					return Profile{}, err
				}
			}
		case "http2":
			b, ok := top[key].(bool)
			if !ok {
				return Profile{}, fmt.Errorf("%w: http2: %s is not true or false", ErrInvalidProfile, describeValue(top[key]))
			}
			p.HTTP2 = b
		default:
			return Profile{}, fmt.Errorf("%w: %s: unknown field: use http2, default and services", ErrInvalidProfile, key)
		}
	}
	def := reflect.ValueOf(p.Default)
	for name, c := range p.Services {
		v := reflect.ValueOf(&c).Elem()
		for _, f := range contractFields() {
			if !slices.Contains(written[name], f.index) {
				v.Field(f.index).Set(def.Field(f.index))
			}
		}
		p.Services[name] = c
	}
	return p, nil
}

// decodeDocument decodes JSON with encoding/json (YAML parsers reject some
// valid JSON, such as the escape \/) and anything else as YAML.
func decodeDocument(data []byte) (any, error) {
	var doc any
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		if dec.More() {
			return nil, errors.New("not valid JSON: more after the closing brace")
		}
		return doc, nil
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 lists its errors on lines of their own: one line here.
		return nil, fmt.Errorf("neither JSON nor valid YAML: %s", oneLine(err.Error()))
	}
	return doc, nil
}

// contractField is a field of Contract as a contract file names it.
type contractField struct {
	name     string
	index    int
	duration bool
	share    bool // a float64: a multiplier or a share, like 0.5
}

var contractFieldsOnce = sync.OnceValue(func() []contractField {
	t := reflect.TypeFor[Contract]()
	out := make([]contractField, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, contractField{name: name, index: i, duration: f.Type == reflect.TypeFor[time.Duration](), share: f.Type.Kind() == reflect.Float64})
	}
	return out
})

func contractFields() []contractField { return contractFieldsOnce() }

func contractFieldNames() string {
	var names []string
	for _, f := range contractFields() {
		names = append(names, f.name)
	}
	return strings.Join(names, ", ")
}

// parseContract reads one Contract at path, returning the indexes of the
// fields it sets.
func parseContract(path string, node any) (Contract, []int, error) {
	var c Contract
	obj, err := asObject(path, node)
	if err != nil {
		return c, nil, fmt.Errorf("%w: %w: write the contract's fields (%s)", ErrInvalidProfile, err, contractFieldNames())
	}
	v := reflect.ValueOf(&c).Elem()
	var set []int
	for _, key := range sortedKeys(obj) {
		i := slices.IndexFunc(contractFields(), func(f contractField) bool { return f.name == key })
		if i < 0 {
			return c, nil, fmt.Errorf("%w: %s.%s: unknown field: use %s", ErrInvalidProfile, path, key, contractFieldNames())
		}
		f := contractFields()[i]
		if f.share {
			x, ok := number(obj[key])
			if !ok || x < 0 {
				return c, nil, fmt.Errorf("%w: %s.%s: %s is not a number of 0 or more: write it like 0.5 or 2", ErrInvalidProfile, path, key, describeValue(obj[key]))
			}
			v.Field(f.index).SetFloat(x)
			set = append(set, f.index)
			continue
		}
		n, err := fieldValue(f, obj[key])
		if err != nil {
			return c, nil, fmt.Errorf("%w: %s.%s: %w", ErrInvalidProfile, path, key, err)
		}
		v.Field(f.index).SetInt(n)
		set = append(set, f.index)
	}
	return c, set, nil
}

// fieldValue reads a duration (as nanoseconds) or a count.
func fieldValue(f contractField, node any) (int64, error) {
	if s, ok := node.(string); ok && f.duration {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q is not a duration: write it like \"250ms\" or \"2s\"", s)
		}
		return int64(d), nil
	}
	n, ok := integer(node)
	switch {
	case !ok && f.duration:
		return 0, fmt.Errorf("%v is not a duration: write it like \"250ms\" or \"2s\"", node)
	case !ok:
		return 0, fmt.Errorf("%v is not a whole number: write a count like 8", node)
	case n < 0:
		return 0, fmt.Errorf("%d is negative: write 0 for the default or a positive value", n)
	case f.duration && n > 0 && n < int64(time.Millisecond):
		// A number is nanoseconds, as Contract's JSON writes it; under a
		// millisecond it is surely meant as another unit.
		return 0, fmt.Errorf("%d is %v: write durations with their unit, like \"%dms\"", n, time.Duration(n), n)
	}
	return n, nil
}

// integer reads a whole number as encoding/json (json.Number) or YAML (int,
// or a float without a fraction) decodes it.
func integer(node any) (int64, bool) {
	switch n := node.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		if err != nil {
			return 0, false
		}
		return integer(f)
	case int:
		return int64(n), true
	case int64:
		return n, true
	case uint64:
		return int64(n), n <= math.MaxInt64
	case float64:
		return int64(n), n == math.Trunc(n) && math.Abs(n) < 1<<53
	}
	return 0, false
}

// number reads any number decodeDocument produces as a finite float64.
func number(node any) (float64, bool) {
	var f float64
	switch n := node.(type) {
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, false
		}
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case uint64:
		f = float64(n)
	case float64:
		f = n
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// describeValue writes a decoded value as the file had it.
func describeValue(node any) string {
	if s, ok := node.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(node)
}

func asObject(path string, node any) (map[string]any, error) {
	obj, ok := node.(map[string]any)
	if !ok {
		where := path
		if where == "" {
			where = "the file"
		}
		if node == nil {
			return nil, fmt.Errorf("%s: empty", where)
		}
		return nil, fmt.Errorf("%s: not an object of named fields", where)
	}
	return obj, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
