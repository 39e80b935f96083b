package fakeservers

import (
	"sync"
	"time"
)

// reqRecord is the compact form of a RequestRecord kept in memory: records
// grow for the whole of a scenario, so strings that repeat (method, route,
// fault) are stored as small indexes.
type reqRecord struct {
	requestID string
	orderID   string
	// retryAfter is the Retry-After header the answer carried, verbatim.
	retryAfter string
	connID     uint64
	arrived    int64 // unix nanoseconds
	took       int64 // nanoseconds from arrival to the end of the handler; -1 while running
	attempt    int32
	status     int16
	route      int8 // index into the service's routes; -1 when no route matched
	method     uint8
	fault      uint8 // faultKinds bitmask
	conn       uint8 // reqHTTP10, reqClose
	draw       uint32
}

// Bits of reqRecord.conn: how the request treated its connection.
const (
	reqHTTP10 uint8 = 1 << iota // arrived as HTTP/1.0
	reqClose                    // asked for the connection to be closed after the answer
)

// connBits is what r says about its connection, as reqRecord.conn keeps it.
func connBits(http10, close bool) uint8 {
	var b uint8
	if http10 {
		b |= reqHTTP10
	}
	if close {
		b |= reqClose
	}
	return b
}

var methodNames = []string{"OTHER", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}

func methodIndex(m string) uint8 {
	switch m {
	case "GET":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "PATCH":
		return 5
	case "HEAD":
		return 6
	case "OPTIONS":
		return 7
	}
	return 0
}

// requestLog holds per-request history, attempt numbering and charges. One
// short critical section at arrival (number the attempt, append) and one at
// the end (fill in the outcome) keep it cheap on the hot path.
type requestLog struct {
	mu       sync.Mutex
	gen      uint64 // bumped by reset so late finishers do not write into new history
	records  []reqRecord
	attempts map[string]int32
}

func newRequestLog() *requestLog {
	return &requestLog{attempts: make(map[string]int32)}
}

// begin numbers the attempt of requestID and appends its record. The
// returned slot lets finish find it again.
func (l *requestLog) begin(requestID string, connID uint64, arrived time.Time, route int8, method string, conn uint8) (slot int, gen uint64, attempt int32) {
	l.mu.Lock()
	attempt = 1
	if requestID != "" {
		attempt = l.attempts[requestID] + 1
		l.attempts[requestID] = attempt
	}
	slot = len(l.records)
	gen = l.gen
	l.records = append(l.records, reqRecord{
		requestID: requestID,
		connID:    connID,
		arrived:   arrived.UnixNano(),
		took:      -1,
		attempt:   attempt,
		route:     route,
		method:    methodIndex(method),
		conn:      conn,
	})
	l.mu.Unlock()
	return slot, gen, attempt
}

func (l *requestLog) finish(slot int, gen uint64, took time.Duration, out outcome) {
	l.mu.Lock()
	if gen == l.gen && slot < len(l.records) {
		r := &l.records[slot]
		if took >= 0 {
			r.took = int64(took)
		}
		r.status = int16(out.status)
		r.fault = out.faults
		r.draw = out.draw
		r.orderID = out.orderID
		r.retryAfter = out.retryAfter
	}
	l.mu.Unlock()
}

func (l *requestLog) reset() {
	l.mu.Lock()
	l.gen++
	l.records = nil
	l.attempts = make(map[string]int32)
	l.mu.Unlock()
}

func (l *requestLog) snapshot(rs []route) []RequestRecord {
	l.mu.Lock()
	recs := append([]reqRecord(nil), l.records...)
	l.mu.Unlock()
	out := make([]RequestRecord, len(recs))
	for i, r := range recs {
		rr := RequestRecord{
			RequestID:  r.requestID,
			Attempt:    int(r.attempt),
			ConnID:     r.connID,
			Arrived:    time.Unix(0, r.arrived),
			Method:     methodNames[r.method],
			Status:     int(r.status),
			Fault:      faultLabel(r.fault),
			Draw:       r.draw,
			OrderID:    r.orderID,
			RetryAfter: r.retryAfter,
			HTTP10:     r.conn&reqHTTP10 != 0,
			Close:      r.conn&reqClose != 0,
		}
		if r.took >= 0 {
			rr.Finished = time.Unix(0, r.arrived+r.took)
		}
		if r.route >= 0 && int(r.route) < len(rs) {
			rr.Route = rs[r.route].pattern
		}
		out[i] = rr
	}
	return out
}
