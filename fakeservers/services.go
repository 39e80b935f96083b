package fakeservers

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Routes of the three services. Every service also serves GET /v1/catalog,
// a large body of ?size=N bytes (default 65536, at most 16 MiB), for faults
// that need a body long enough to be slowed down or cut.
const (
	RouteCharges       = "/v1/charges"
	RouteCharge        = "/v1/charges/{id}"
	RouteItem          = "/v1/items/{sku}"
	RouteReservations  = "/v1/reservations"
	RouteNotifications = "/v1/notifications"
	RouteCatalog       = "/v1/catalog"
)

const (
	defaultCatalogSize = 64 << 10
	maxCatalogSize     = 16 << 20
	minCatalogSize     = 64
	maxRequestBody     = 64 << 10
)

// response is a rendered answer, with its header values prepared once so
// cached bodies cost no allocation to send.
type response struct {
	status int
	body   []byte
	clen   []string
	digest []string
	extra  [][2]string
}

func newResponse(status int, body []byte) *response {
	return &response{
		status: status,
		body:   body,
		clen:   []string{strconv.Itoa(len(body))},
		digest: []string{BodyDigest(body)},
	}
}

func jsonResponse(status int, v any) *response {
	b, err := json.Marshal(v)
	if err != nil {
		return errorResponse(http.StatusInternalServerError, "encode", err.Error())
	}
	return newResponse(status, b)
}

type apiError struct {
	Error struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorResponse(status int, code, msg string) *response {
	var e apiError
	e.Error.Status, e.Error.Code, e.Error.Message = status, code, msg
	b, _ := json.Marshal(e)
	return newResponse(status, b)
}

type handlerFunc func(s *Server, r *http.Request, param string) (resp *response, orderID string)

type route struct {
	method  string
	pattern string
	prefix  string // set for patterns ending in one {param}
	handle  handlerFunc
}

func mkRoute(method, pattern string, h handlerFunc) route {
	rt := route{method: method, pattern: pattern, handle: h}
	if i := strings.IndexByte(pattern, '{'); i >= 0 {
		rt.prefix = pattern[:i]
	}
	return rt
}

func routesFor(service string) []route {
	catalog := mkRoute(http.MethodGet, RouteCatalog, (*Server).catalog)
	switch service {
	case Payment:
		return []route{
			mkRoute(http.MethodPost, RouteCharges, (*Server).createCharge),
			mkRoute(http.MethodGet, RouteCharge, (*Server).getCharge),
			catalog,
		}
	case Inventory:
		return []route{
			mkRoute(http.MethodGet, RouteItem, (*Server).getItem),
			mkRoute(http.MethodPost, RouteReservations, (*Server).createReservation),
			catalog,
		}
	case Notification:
		return []route{
			mkRoute(http.MethodPost, RouteNotifications, (*Server).createNotification),
			catalog,
		}
	}
	return nil
}

// match finds the route for a request. It returns -1 and a 404 or 405
// answer when none fits.
func match(rs []route, method, path string) (idx int8, param string, miss *response) {
	pathFound := false
	for i := range rs {
		rt := &rs[i]
		var p string
		if rt.prefix != "" {
			rest, ok := strings.CutPrefix(path, rt.prefix)
			if !ok || rest == "" || strings.IndexByte(rest, '/') >= 0 {
				continue
			}
			p = rest
		} else if path != rt.pattern {
			continue
		}
		if rt.method != method {
			pathFound = true
			continue
		}
		return int8(i), p, nil
	}
	if pathFound {
		return -1, "", errorResponse(http.StatusMethodNotAllowed, "method_not_allowed", method+" is not allowed on "+path)
	}
	return -1, "", errorResponse(http.StatusNotFound, "not_found", "no route for "+path)
}

// decodeBody reads a JSON request body, naming the field that is wrong.
func decodeBody(r *http.Request, v any) *response {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	if err := dec.Decode(v); err != nil {
		return errorResponse(http.StatusBadRequest, "invalid_body", "body"+describeJSONError(err))
	}
	return nil
}

// paymentState is the payment service's ledger.
type paymentState struct {
	mu       sync.Mutex
	next     int
	charges  map[string]Charge
	byKey    map[string]string // Idempotency-Key -> charge id
	perOrder map[string]int
}

func (p *paymentState) reset() {
	p.mu.Lock()
	p.charges = make(map[string]Charge)
	p.byKey = make(map[string]string)
	p.perOrder = make(map[string]int)
	p.mu.Unlock()
}

func (p *paymentState) chargesPerOrder() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.perOrder))
	for k, v := range p.perOrder {
		out[k] = v
	}
	return out
}

func (s *Server) createCharge(r *http.Request, _ string) (*response, string) {
	var req ChargeRequest
	if bad := decodeBody(r, &req); bad != nil {
		return bad, ""
	}
	switch {
	case req.OrderID == "":
		return errorResponse(http.StatusBadRequest, "invalid_body", "order_id: missing"), ""
	case req.Amount <= 0:
		return errorResponse(http.StatusBadRequest, "invalid_body", "amount: must be > 0 (minor units)"), req.OrderID
	case len(req.Currency) != 3:
		return errorResponse(http.StatusBadRequest, "invalid_body", "currency: want an ISO 4217 code such as \"EUR\""), req.OrderID
	}
	key := r.Header.Get(HeaderIdempotencyKey)
	p := &s.payment
	p.mu.Lock()
	if id, ok := p.byKey[key]; ok && key != "" {
		ch := p.charges[id]
		p.mu.Unlock()
		if ch.OrderID != req.OrderID || ch.Amount != req.Amount || ch.Currency != strings.ToUpper(req.Currency) {
			return errorResponse(http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency-Key "+key+" was first used for a different charge"), req.OrderID
		}
		resp := jsonResponse(http.StatusCreated, ch)
		resp.extra = [][2]string{{"Idempotent-Replayed", "true"}, {"Location", RouteCharges + "/" + ch.ID}}
		return resp, req.OrderID
	}
	p.next++
	ch := Charge{
		ID:       fmt.Sprintf("ch_%08d", p.next),
		OrderID:  req.OrderID,
		Amount:   req.Amount,
		Currency: strings.ToUpper(req.Currency),
		Status:   "succeeded",
		Created:  time.Now().UTC(),
	}
	p.charges[ch.ID] = ch
	if key != "" {
		p.byKey[key] = ch.ID
	}
	p.perOrder[ch.OrderID]++
	p.mu.Unlock()
	resp := jsonResponse(http.StatusCreated, ch)
	resp.extra = [][2]string{{"Location", RouteCharges + "/" + ch.ID}}
	return resp, req.OrderID
}

func (s *Server) getCharge(_ *http.Request, id string) (*response, string) {
	s.payment.mu.Lock()
	ch, ok := s.payment.charges[id]
	s.payment.mu.Unlock()
	if !ok {
		return errorResponse(http.StatusNotFound, "no_such_charge", "no charge "+id), ""
	}
	return jsonResponse(http.StatusOK, ch), ch.OrderID
}

// itemCache keeps rendered item bodies: GET /v1/items/{sku} is the hot path
// and an item's body depends only on its SKU. Bounded so a workload with
// endless SKUs cannot grow it without limit.
type itemCache struct {
	m sync.Map // sku -> *response
	n atomic.Int64
}

const maxCachedItems = 4096

func validSKU(sku string) bool {
	if len(sku) > 64 {
		return false
	}
	for i := 0; i < len(sku); i++ {
		c := sku[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Server) getItem(_ *http.Request, sku string) (*response, string) {
	if v, ok := s.items.m.Load(sku); ok {
		return v.(*response), ""
	}
	if !validSKU(sku) {
		return errorResponse(http.StatusBadRequest, "invalid_sku", "sku: want at most 64 of [A-Za-z0-9._-]"), ""
	}
	resp := newResponse(http.StatusOK, renderItem(sku))
	if s.items.n.Load() < maxCachedItems {
		if _, loaded := s.items.m.LoadOrStore(sku, resp); !loaded {
			s.items.n.Add(1)
		}
	}
	return resp, ""
}

var (
	itemNouns      = []string{"Widget", "Bracket", "Sprocket", "Gasket", "Flange", "Bearing", "Coupling", "Valve"}
	itemAdjectives = []string{"Galvanised", "Stainless", "Heavy-duty", "Compact", "Precision", "Modular"}
	warehouses     = []string{"ams-1", "fra-2", "dub-1", "waw-3"}
)

// renderItem builds a realistic item (around 500 bytes) determined by its SKU.
func renderItem(sku string) []byte {
	h := fnv.New64a()
	_, _ = h.Write([]byte(sku))
	v := h.Sum64()
	pick := func(list []string, shift uint) string { return list[(v>>shift)%uint64(len(list))] }
	name := pick(itemAdjectives, 3) + " " + pick(itemNouns, 11)
	b := make([]byte, 0, 640)
	b = append(b, `{"sku":`...)
	b = strconv.AppendQuote(b, sku)
	b = append(b, `,"name":`...)
	b = strconv.AppendQuote(b, name)
	b = append(b, `,"description":`...)
	b = strconv.AppendQuote(b, name+" for industrial assemblies; corrosion resistant, rated for continuous duty, supplied in boxes of "+strconv.Itoa(int(v>>20%50)+10)+".")
	b = fmt.Appendf(b, `,"price":{"amount":%d,"currency":"EUR","tax_included":true}`, 199+int(v>>27%20000))
	b = fmt.Appendf(b, `,"stock":{"available":%d,"reserved":%d,"warehouse":%q,"restock_days":%d}`, int(v>>33%500), int(v>>41%20), pick(warehouses, 45), int(v>>49%14)+1)
	b = fmt.Appendf(b, `,"dimensions":{"weight_g":%d,"length_mm":%d,"width_mm":%d,"height_mm":%d}`, int(v>>7%5000)+20, int(v>>13%400)+10, int(v>>17%300)+10, int(v>>23%200)+5)
	b = append(b, `,"tags":["hardware","b2b","`...)
	b = append(b, strings.ToLower(pick(itemNouns, 11))...)
	b = append(b, `"],"updated":"2025-01-15T09:30:00Z"}`...)
	return b
}

type reservationRequest struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	OrderID  string `json:"order_id"`
}

type reservation struct {
	ID        string    `json:"id"`
	SKU       string    `json:"sku"`
	Quantity  int       `json:"quantity"`
	OrderID   string    `json:"order_id"`
	Status    string    `json:"status"`
	Warehouse string    `json:"warehouse"`
	ExpiresAt time.Time `json:"expires_at"`
	Created   time.Time `json:"created"`
}

func (s *Server) createReservation(r *http.Request, _ string) (*response, string) {
	var req reservationRequest
	if bad := decodeBody(r, &req); bad != nil {
		return bad, ""
	}
	switch {
	case req.SKU == "" || !validSKU(req.SKU):
		return errorResponse(http.StatusBadRequest, "invalid_body", "sku: want 1 to 64 of [A-Za-z0-9._-]"), req.OrderID
	case req.Quantity <= 0:
		return errorResponse(http.StatusBadRequest, "invalid_body", "quantity: must be > 0"), req.OrderID
	}
	now := time.Now().UTC()
	return jsonResponse(http.StatusCreated, reservation{
		ID:        fmt.Sprintf("rsv_%08d", s.reservations.Add(1)),
		SKU:       req.SKU,
		Quantity:  req.Quantity,
		OrderID:   req.OrderID,
		Status:    "held",
		Warehouse: warehouses[len(req.SKU)%len(warehouses)],
		ExpiresAt: now.Add(15 * time.Minute),
		Created:   now,
	}), req.OrderID
}

type notificationRequest struct {
	Channel   string            `json:"channel"`
	Recipient string            `json:"recipient"`
	Template  string            `json:"template"`
	OrderID   string            `json:"order_id"`
	Data      map[string]string `json:"data"`
}

type notificationAck struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Channel   string    `json:"channel"`
	Recipient string    `json:"recipient"`
	Template  string    `json:"template"`
	OrderID   string    `json:"order_id,omitempty"`
	Queued    time.Time `json:"queued"`
}

func (s *Server) createNotification(r *http.Request, _ string) (*response, string) {
	var req notificationRequest
	if bad := decodeBody(r, &req); bad != nil {
		return bad, ""
	}
	switch {
	case req.Channel != "email" && req.Channel != "sms" && req.Channel != "push":
		return errorResponse(http.StatusBadRequest, "invalid_body", "channel: want one of email, sms, push"), req.OrderID
	case req.Recipient == "":
		return errorResponse(http.StatusBadRequest, "invalid_body", "recipient: missing"), req.OrderID
	}
	if req.Template == "" {
		req.Template = "generic"
	}
	return jsonResponse(http.StatusAccepted, notificationAck{
		ID:        fmt.Sprintf("ntf_%08d", s.notifications.Add(1)),
		Status:    "queued",
		Channel:   req.Channel,
		Recipient: req.Recipient,
		Template:  req.Template,
		OrderID:   req.OrderID,
		Queued:    time.Now().UTC(),
	}), req.OrderID
}

// catalogCache keeps the last few large bodies: hashing 16 MiB per request
// would make the large-body route measure the server instead of the client.
type catalogCache struct {
	mu     sync.Mutex
	bySize map[int]*response
}

const maxCachedCatalogs = 8

func (s *Server) catalog(r *http.Request, _ string) (*response, string) {
	size := defaultCatalogSize
	if q := r.URL.Query().Get("size"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < minCatalogSize || n > maxCatalogSize {
			return errorResponse(http.StatusBadRequest, "invalid_size", fmt.Sprintf("size: want bytes in [%d, %d], got %q", minCatalogSize, maxCatalogSize, q)), ""
		}
		size = n
	}
	c := &s.catalogs
	c.mu.Lock()
	defer c.mu.Unlock()
	if resp, ok := c.bySize[size]; ok {
		return resp, ""
	}
	if len(c.bySize) >= maxCachedCatalogs {
		clear(c.bySize)
	}
	resp := newResponse(http.StatusOK, renderCatalog(s.cfg.Service, size))
	c.bySize[size] = resp
	return resp, ""
}

// renderCatalog builds valid JSON of exactly size bytes (size >= minCatalogSize).
func renderCatalog(service string, size int) []byte {
	b := make([]byte, 0, size)
	b = append(b, `{"service":"`...)
	b = append(b, service...)
	b = append(b, `","items":[`...)
	const tail = `],"pad":""}`
	for i := 1; ; i++ {
		item := fmt.Appendf(nil, `{"sku":"SKU-%06d","name":"Catalog entry %d","price":%d,"available":%t}`, i, i, 100+i*7%9000, i%3 != 0)
		sep := 0
		if i > 1 {
			sep = 1
		}
		if len(b)+sep+len(item)+len(tail) > size {
			break
		}
		if sep == 1 {
			b = append(b, ',')
		}
		b = append(b, item...)
	}
	b = append(b, `],"pad":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}
