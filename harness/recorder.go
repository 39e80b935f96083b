package harness

import (
	"sort"
	"sync"
)

const (
	// recorderChunk is the number of calls per chunk: appending never copies
	// what was already recorded, and the final history holds exactly one
	// slice of the right size.
	recorderChunk = 4096
	// maxErrorTexts caps the distinct error texts kept: texts that embed an
	// ephemeral port are distinct per call and must not grow the history
	// without bound.
	maxErrorTexts = 512
	// errTextDropped marks a call whose error text was not kept.
	errTextDropped = ^uint16(0)
)

// Recorder collects call records from concurrent workers. It is safe for
// concurrent use; its lock is held only for an append.
type Recorder struct {
	mu       sync.Mutex
	chunks   [][]CallRecord
	n        int
	texts    []string
	textIdx  map[string]uint16
	byClass  [len(classNames)]int64
	textSeen int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{textIdx: make(map[string]uint16)}
}

// Record appends one call. errText is interned; "" means no error text.
func (r *Recorder) Record(c CallRecord, errText string) {
	r.mu.Lock()
	if errText != "" {
		c.Err = r.internLocked(errText)
	}
	if len(r.chunks) == 0 || len(r.chunks[len(r.chunks)-1]) == recorderChunk {
		r.chunks = append(r.chunks, make([]CallRecord, 0, recorderChunk))
	}
	last := len(r.chunks) - 1
	r.chunks[last] = append(r.chunks[last], c)
	r.n++
	if int(c.Class) < len(r.byClass) {
		r.byClass[c.Class]++
	}
	r.mu.Unlock()
}

func (r *Recorder) internLocked(text string) uint16 {
	if i, ok := r.textIdx[text]; ok {
		return i
	}
	if len(r.texts) >= maxErrorTexts {
		return errTextDropped
	}
	r.texts = append(r.texts, text)
	i := uint16(len(r.texts))
	r.textIdx[text] = i
	return i
}

// Len is the number of calls recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Counts returns the calls recorded so far, and those that failed (any class but none).
func (r *Recorder) Counts() (total, failed, hung int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(r.n), int64(r.n) - r.byClass[ClassNone], r.byClass[ClassHang]
}

// Calls returns every record, ordered by start then Seq, in one slice of
// exactly the recorded length, and the interned error texts.
func (r *Recorder) Calls() ([]CallRecord, []string) {
	r.mu.Lock()
	out := make([]CallRecord, 0, r.n)
	for _, ch := range r.chunks {
		out = append(out, ch...)
	}
	texts := append([]string(nil), r.texts...)
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Start != out[j].Start {
			return out[i].Start < out[j].Start
		}
		return out[i].Seq < out[j].Seq
	})
	return out, texts
}
