package media

// SetFrameHook makes the pacer call f after each audio frame it wrote (the benchmark's latency probe).
func SetFrameHook(s *Stream, f func()) {
	s.mu.Lock()
	s.frameHook = f
	s.mu.Unlock()
}
