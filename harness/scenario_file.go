package harness

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

// ErrInvalidScenarioFile is wrapped by the errors of ParseScenarios and
// LoadScenarios; each also wraps a *FieldError naming the field's path.
var ErrInvalidScenarioFile = errors.New("invalid scenario file")

// LoadScenarios reads the scenario file at path; see ParseScenarios.
func LoadScenarios(path string) ([]Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario file %s: %w", path, err)
	}
	s, err := ParseScenarios(data)
	if err != nil {
		return nil, fmt.Errorf("scenario file %s: %w", path, err)
	}
	return s, nil
}

// ParseScenarios reads a scenario file, JSON or YAML: either one scenario
// in Scenario's JSON shape, or {"scenarios": [...]} holding several.
// Durations are written like "250ms" or "2s" (a number is nanoseconds, as
// Scenario's JSON writes it); checks are {"id": ..., bounds...} as Checks
// saves them. A toxic that leaves out "toxicity" applies to every
// connection (1), as the toxic constructors make it.
//
// Everything Certify would refuse is refused here, before anything runs:
// unknown fields, wrong types, negative numbers, unknown action kinds,
// toxics, fake-server faults and check ids, a step outside the workload,
// missing required fields, a bad family, two scenarios with one name.
// The error is one line naming the field's path, e.g.
// "scenarios[0].steps[2].at: 5s is not before the workload's 4s duration: ...".
func ParseScenarios(data []byte) ([]Scenario, error) {
	out, fe := parseScenarios(data)
	if fe != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidScenarioFile, fe)
	}
	return out, nil
}

func parseScenarios(data []byte) ([]Scenario, *FieldError) {
	doc, err := decodeDocument(data)
	if err != nil {
		return nil, &FieldError{Path: "the file", Problem: oneLine(err.Error())}
	}
	top, err := asObject("", doc)
	if err != nil {
		return nil, &FieldError{Path: "the file", Problem: `not an object: write one scenario {"name": ..., "workload": ..., "checks": [...]} or {"scenarios": [...]}`}
	}
	list, several := top["scenarios"]
	if !several {
		var s Scenario
		if fe := decodeScenario("", top, &s); fe != nil {
			return nil, fe
		}
		return []Scenario{s}, nil
	}
	if len(top) > 1 {
		extra := slices.DeleteFunc(sortedKeys(top), func(k string) bool { return k == "scenarios" })
		return nil, &FieldError{Path: joinPath("", extra[0]), Problem: `unknown field beside "scenarios": move it into a scenario`}
	}
	items, ok := list.([]any)
	if !ok || len(items) == 0 {
		return nil, &FieldError{Path: "scenarios", Problem: `want a non-empty list of scenarios: write [{"name": ...}, ...]`}
	}
	out := make([]Scenario, len(items))
	names := map[string]int{}
	for i, item := range items {
		path := fmt.Sprintf("scenarios[%d]", i)
		if fe := decodeScenario(path, item, &out[i]); fe != nil {
			return nil, fe
		}
		if j, dup := names[out[i].Name]; dup {
			return nil, &FieldError{Path: path + ".name", Problem: fmt.Sprintf("%q is also scenarios[%d]'s name: names identify scenarios in reports and filters", out[i].Name, j)}
		}
		names[out[i].Name] = i
	}
	return out, nil
}

// decodeScenario reads one scenario at path and validates it as Certify
// would.
func decodeScenario(path string, node any, s *Scenario) *FieldError {
	if fe := decodeNode(path, node, reflect.ValueOf(s).Elem()); fe != nil {
		return fe
	}
	for i, st := range s.Steps {
		if fe := st.Action.fieldProblem(); fe != nil {
			return &FieldError{Path: joinPath(path, fmt.Sprintf("steps[%d].action.%s", i, fe.Path)), Problem: fe.Problem}
		}
	}
	if fe := s.fieldProblem(); fe != nil {
		return &FieldError{Path: joinPath(path, fe.Path), Problem: fe.Problem}
	}
	return nil
}

// actionKinds lists every kind of Action, with the one field (beside
// service) it needs, if any.
var actionKinds = []struct{ kind, field string }{
	{ActionAddToxic, "toxic"},
	{ActionRemoveToxic, "toxic_name"},
	{ActionDisableProxy, ""},
	{ActionEnableProxy, ""},
	{ActionSetHTTPFaults, "http_faults"},
	{ActionClearHTTPFaults, ""},
	{ActionSetKeepAlive, "keepalive"},
	{ActionSetProtocol, "protocol"},
}

// ToxicAttributes lists the attributes of each Toxiproxy toxic type a
// scenario can add.
var ToxicAttributes = map[string][]string{
	ToxicLatency:   {"latency", "jitter"},
	ToxicBandwidth: {"rate"},
	ToxicSlowClose: {"delay"},
	ToxicTimeout:   {"timeout"},
	ToxicResetPeer: {"timeout"},
	ToxicSlicer:    {"average_size", "size_variation", "delay"},
	ToxicLimitData: {"bytes"},
}

// fieldProblem finds what makes a run refuse a: an unknown kind or
// service, a field the kind does not take or lacks, a bad toxic or fault.
// Paths are relative to the action.
func (a Action) fieldProblem() *FieldError {
	bad := func(path, format string, args ...any) *FieldError {
		return &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)}
	}
	i := slices.IndexFunc(actionKinds, func(k struct{ kind, field string }) bool { return k.kind == a.Kind })
	if i < 0 {
		var kinds []string
		for _, k := range actionKinds {
			kinds = append(kinds, k.kind)
		}
		return bad("kind", "%q is not an action: use one of %s", a.Kind, strings.Join(kinds, ", "))
	}
	service := a.Service
	if base, _, replica := ReplicaOf(a.Service); replica && slices.Contains(fakeservers.Services, base) {
		service = base
	}
	if !slices.Contains(fakeservers.Services, service) {
		return bad("service", "%q is not a service: use one of %s, or a replica such as %q", a.Service, strings.Join(fakeservers.Services, ", "), ReplicaName(fakeservers.Inventory, 0))
	}
	set := map[string]bool{
		"toxic": a.Toxic != nil, "toxic_name": a.ToxicName != "", "http_faults": a.HTTPFaults != nil,
		"keepalive": a.KeepAlive != nil, "protocol": a.Protocol != "",
	}
	for _, k := range actionKinds {
		switch {
		case k.field == "":
		case k.kind == a.Kind && !set[k.field]:
			return bad(k.field, "missing: kind %s needs it", a.Kind)
		case k.kind != a.Kind && set[k.field]:
			return bad(k.field, "only for kind %s: leave it out of a %s step", k.kind, a.Kind)
		}
	}
	switch a.Kind {
	case ActionAddToxic:
		t := a.Toxic
		attrs, known := ToxicAttributes[t.Type]
		if !known {
			types := slices.Sorted(maps.Keys(ToxicAttributes))
			return bad("toxic.type", "%q is not a toxic: use one of %s", t.Type, strings.Join(types, ", "))
		}
		if _, err := t.Normalize(); err != nil {
			switch {
			case t.Stream != Upstream && t.Stream != Downstream:
				return bad("toxic.stream", "%q: use %q or %q", t.Stream, Upstream, Downstream)
			default:
				return bad("toxic.toxicity", "%v: use a probability from 0 to 1", t.Toxicity)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(t.Attributes)) {
			if !slices.Contains(attrs, name) {
				return bad("toxic.attributes."+name, "not an attribute of a %s toxic: use %s", t.Type, strings.Join(attrs, ", "))
			}
		}
	case ActionSetHTTPFaults:
		for j, f := range a.HTTPFaults {
			if err := fakeservers.ValidateFault(service, f); err != nil {
				field, problem, _ := strings.Cut(err.Error(), ": ")
				return bad(fmt.Sprintf("http_faults[%d].%s", j, field), "%s", problem)
			}
		}
	case ActionSetProtocol:
		if a.Protocol != ProtocolHTTP1 && a.Protocol != ProtocolHTTP2 {
			return bad("protocol", "%q: use %q or %q", a.Protocol, ProtocolHTTP1, ProtocolHTTP2)
		}
	}
	return nil
}

// requiredFields lists the fields a file must write, by type: the others
// have a meaningful zero.
var requiredFields = map[reflect.Type][]string{
	reflect.TypeFor[Scenario]():          {"name", "family", "proves", "workload", "checks"},
	reflect.TypeFor[Workload]():          {"duration"},
	reflect.TypeFor[Step]():              {"at", "action"},
	reflect.TypeFor[Action]():            {"kind", "service"},
	reflect.TypeFor[Toxic]():             {"type", "stream"},
	reflect.TypeFor[Stretch]():           {"from", "until", "need"},
	reflect.TypeFor[fakeservers.Fault](): {"kind"},
}

var (
	durationTypes = []reflect.Type{reflect.TypeFor[time.Duration](), reflect.TypeFor[fakeservers.Duration]()}
	checksType    = reflect.TypeFor[Checks]()
	anyMapType    = reflect.TypeFor[map[string]any]()
)

// jsonField is a struct field as JSON names it.
type jsonField struct {
	name  string
	index int
}

func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, index: i})
	}
	return out
}

func jsonFieldNames(t reflect.Type) string {
	var names []string
	for _, f := range jsonFields(t) {
		names = append(names, f.name)
	}
	if len(names) == 0 {
		return "no fields"
	}
	return strings.Join(names, ", ")
}

func joinPath(path, field string) string {
	if field == "" {
		field = `""` // a key the file left empty, shown as such
	}
	if path == "" {
		return field
	}
	if strings.HasPrefix(field, "[") {
		return path + field
	}
	return path + "." + field
}

// decodeNode stores node, decoded by decodeDocument, in v, strictly, in
// the shape encoding/json gives v's type; durations also as "250ms".
func decodeNode(path string, node any, v reflect.Value) *FieldError {
	bad := func(format string, args ...any) *FieldError {
		return &FieldError{Path: cmp.Or(path, "the file"), Problem: fmt.Sprintf(format, args...)}
	}
	t := v.Type()
	if node == nil {
		return bad("empty: write a value or leave the field out")
	}
	switch {
	case t == checksType:
		return decodeChecks(path, node, v)
	case slices.Contains(durationTypes, t):
		n, err := fieldValue(contractField{duration: true}, node)
		if err != nil {
			return bad("%v", err)
		}
		v.SetInt(n)
		return nil
	case t == anyMapType: // Toxic.Attributes: numbers, whole ones as int64 like the constructors write
		obj, ok := node.(map[string]any)
		if !ok {
			return bad(`%s is not an object: write e.g. {"latency": 500}`, describeValue(node))
		}
		m := make(map[string]any, len(obj))
		for _, k := range sortedKeys(obj) {
			if n, ok := integer(obj[k]); ok && n >= 0 {
				m[k] = n
			} else if f, ok := number(obj[k]); ok && f >= 0 {
				m[k] = f
			} else {
				return &FieldError{Path: joinPath(path, k), Problem: fmt.Sprintf("%s is not a number >= 0", describeValue(obj[k]))}
			}
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if fe := decodeNode(path, node, p.Elem()); fe != nil {
			return fe
		}
		v.Set(p)
	case reflect.Struct:
		return decodeStruct(path, node, v)
	case reflect.Slice:
		items, ok := node.([]any)
		if !ok {
			return bad("%s is not a list: write [...]", describeValue(node))
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			if fe := decodeNode(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i)); fe != nil {
				return fe
			}
		}
		v.Set(s)
	case reflect.String:
		s, ok := node.(string)
		if !ok {
			return bad("%s is not text: write it in quotes", describeValue(node))
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := node.(bool)
		if !ok {
			return bad("%s is not true or false", describeValue(node))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := integer(node)
		switch {
		case !ok:
			return bad("%s is not a whole number: write e.g. 8", describeValue(node))
		case n < 0 && path != "seed" && !strings.HasSuffix(path, ".seed"):
			return bad("%d is negative: write 0 for the default or a positive value", n)
		case v.OverflowInt(n):
			return bad("%d is too large", n)
		}
		v.SetInt(n)
	case reflect.Float64, reflect.Float32:
		f, ok := number(node)
		switch {
		case !ok:
			return bad("%s is not a number: write e.g. 0.5", describeValue(node))
		case f < 0:
			return bad("%v is negative: write 0 for the default or a positive value", f)
		case v.OverflowFloat(f):
			return bad("%v is too large", f)
		}
		v.SetFloat(f)
	default:
		return bad("cannot be written in a file (a %v): leave it out", t)
	}
	return nil
}

// decodeStruct reads an object into the struct v: every key must be one
// of its JSON fields, and requiredFields must all be there.
func decodeStruct(path string, node any, v reflect.Value) *FieldError {
	t := v.Type()
	obj, ok := node.(map[string]any)
	if !ok {
		return &FieldError{Path: cmp.Or(path, "the file"), Problem: fmt.Sprintf("%s is not an object: write {...} with fields %s", describeValue(node), jsonFieldNames(t))}
	}
	fields := jsonFields(t)
	for _, key := range sortedKeys(obj) {
		i := slices.IndexFunc(fields, func(f jsonField) bool { return f.name == key })
		if i < 0 {
			return &FieldError{Path: joinPath(path, key), Problem: "unknown field: use " + jsonFieldNames(t)}
		}
		if fe := decodeNode(joinPath(path, key), obj[key], v.Field(fields[i].index)); fe != nil {
			return fe
		}
	}
	for _, name := range requiredFields[t] {
		if _, ok := obj[name]; !ok {
			return &FieldError{Path: joinPath(path, name), Problem: "missing: this field is required (see docs/scenario-file.md)"}
		}
	}
	if t == reflect.TypeFor[Toxic]() {
		if _, ok := obj["toxicity"]; !ok {
			v.FieldByName("Toxicity").SetFloat(1)
		}
	}
	return nil
}

// decodeChecks reads checks as Checks.UnmarshalJSON does, strictly, with
// durations also as "250ms".
func decodeChecks(path string, node any, v reflect.Value) *FieldError {
	items, ok := node.([]any)
	if !ok {
		return &FieldError{Path: path, Problem: fmt.Sprintf(`%s is not a list: write [{"id": "pool.bound"}, ...]`, describeValue(node))}
	}
	out := make(Checks, 0, len(items))
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		obj, ok := item.(map[string]any)
		if !ok {
			return &FieldError{Path: p, Problem: fmt.Sprintf(`%s is not an object: write {"id": "pool.bound", bounds...}`, describeValue(item))}
		}
		id, ok := obj["id"].(string)
		if !ok {
			return &FieldError{Path: p + ".id", Problem: `missing or not text: name the check, e.g. "pool.bound" (poolproof list checks)`}
		}
		checkRegistry.RLock()
		t, known := checkRegistry.byID[id]
		checkRegistry.RUnlock()
		if !known {
			return &FieldError{Path: p + ".id", Problem: fmt.Sprintf("%q is not a check: use one of %s", id, strings.Join(RegisteredChecks(), ", "))}
		}
		bounds := make(map[string]any, len(obj))
		for k, val := range obj {
			if k != "id" {
				bounds[k] = val
			}
		}
		c := reflect.New(t).Elem()
		if fe := decodeStruct(p, bounds, c); fe != nil {
			if strings.HasSuffix(fe.Problem, "no fields") {
				fe.Problem = "unknown field: check " + id + " takes only its id"
			}
			return fe
		}
		out = append(out, c.Interface().(Check))
	}
	v.Set(reflect.ValueOf(out))
	return nil
}

// oneLine joins a multi-line parser message into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// MarshalScenarios writes scenarios in the form ParseScenarios reads,
// {"scenarios": [...]}, with durations as "250ms".
func MarshalScenarios(scenarios []Scenario) ([]byte, error) {
	raw, err := json.Marshal(scenarios)
	if err != nil {
		return nil, err
	}
	var doc []any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	for i := range doc {
		doc[i] = durationsAsText(reflect.TypeFor[Scenario](), doc[i])
	}
	return json.MarshalIndent(map[string]any{"scenarios": doc}, "", "  ")
}

// durationsAsText rewrites, in node (the JSON of a value of type t), every
// duration written in nanoseconds as "250ms".
func durationsAsText(t reflect.Type, node any) any {
	switch {
	case slices.Contains(durationTypes, t):
		if n, ok := node.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return time.Duration(i).String()
			}
		}
		return node
	case t == checksType:
		items, _ := node.([]any)
		for _, item := range items {
			obj, _ := item.(map[string]any)
			id, _ := obj["id"].(string)
			checkRegistry.RLock()
			ct, ok := checkRegistry.byID[id]
			checkRegistry.RUnlock()
			if ok {
				durationsAsText(ct, obj)
			}
		}
		return node
	}
	switch t.Kind() {
	case reflect.Pointer:
		return durationsAsText(t.Elem(), node)
	case reflect.Slice:
		items, _ := node.([]any)
		for i := range items {
			items[i] = durationsAsText(t.Elem(), items[i])
		}
	case reflect.Struct:
		obj, _ := node.(map[string]any)
		for _, f := range jsonFields(t) {
			if val, ok := obj[f.name]; ok {
				obj[f.name] = durationsAsText(t.Field(f.index).Type, val)
			}
		}
	}
	return node
}
