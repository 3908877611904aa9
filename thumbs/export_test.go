package thumbs

// SetHooks sets the test hooks of h: waited is told a flight's number of
// waiting requests each time one joins or leaves, made the error each
// flight's work ended with. Call it before h serves.
func (h *Handler) SetHooks(waited func(waiters int), made func(err error)) {
	h.waited, h.made = waited, made
}
