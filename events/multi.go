package events

// multi is the Sink returned by Multi.
type multi []Sink

// Emit passes e to each sink in turn.
func (m multi) Emit(e Event) {
	for _, s := range m {
		s.Emit(e)
	}
}

// Multi returns a Sink that passes each event to every one of sinks, in
// order. Nil sinks are skipped and sinks made by Multi are flattened; with
// no sinks left it returns [Discard], with one it returns that sink. Each
// sink must honour the [Sink] contract itself: Multi does not queue.
func Multi(sinks ...Sink) Sink {
	var out multi
	for _, s := range sinks {
		switch s := s.(type) {
		case nil:
		case multi:
			out = append(out, s...)
		default:
			out = append(out, s)
		}
	}
	switch len(out) {
	case 0:
		return Discard
	case 1:
		return out[0]
	}
	return out
}
