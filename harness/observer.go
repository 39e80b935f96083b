package harness

// Observer sees a run as the harness records it, for a live view (metrics,
// a dashboard) rather than a verdict: the history stays the record.
// Every method must return quickly and must not block: CallRecorded runs
// on the worker that made the call, between its calls; Sampled and
// StepDone on the sampler's and the nemesis's goroutines. Methods may be
// called concurrently.
type Observer interface {
	// RunStarted is called once the clients are built, before the first
	// call; services are in the order of Sample.ServerConns.
	RunStarted(scenario string, services []string)
	// CallRecorded is called for each call as it is recorded.
	CallRecorded(CallRecord)
	// Sampled is called at every sample (every ~100ms).
	Sampled(Sample)
	// StepDone is called after each nemesis step the run reached.
	StepDone(StepRecord)
}

// WithObserver has o see every call, sample and nemesis step of the run.
// It costs the hot path one interface call per recorded call; with no
// observer, one nil check.
func WithObserver(o Observer) RunOption { return func(c *runConfig) { c.observer = o } }
