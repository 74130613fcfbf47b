package dashboardapi

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/g0lab/g0efilter/suggest"
)

// suggestMaxRecords bounds the records read for one suggestion.
const suggestMaxRecords = 200_000

// suggestPolicy answers GET /api/v1/suggest?hostname=H (&dns=1 for a
// filter in dns mode) with a policy, in YAML, that allows what the stored
// events of that filter show its workload did: the suggest package's
// rules over what this dashboard holds. It is for a person to review, a
// download, never applied by the dashboard.
func (s *Server) suggestPolicy(w http.ResponseWriter, r *http.Request) {
	host, o, partial, ok := s.hostObservations(w, r)
	if !ok {
		return
	}
	header := fmt.Sprintf("Suggested by the dashboard from %d events of %s", o.Events, host)
	if !o.From.IsZero() {
		header += fmt.Sprintf(",\n%s to %s", o.From.UTC().Format("2006-01-02 15:04:05"), o.To.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if partial {
		header += fmt.Sprintf(",\nthe oldest %d events this dashboard holds only", suggestMaxRecords)
	}
	if o.Skipped > 0 {
		header += fmt.Sprintf(".\n%d events were no reason to allow anything (denied, malformed, attempts to get around the filter)", o.Skipped)
	}
	if o.Overflow > 0 {
		header += fmt.Sprintf(".\n%d events were about more destinations than the %d kept, and left out", o.Overflow, suggest.DefaultMaxDestinations)
	}
	header += ".\nReview every entry before you use it: it allows what the workload did, no more."
	var b bytes.Buffer
	entries := suggest.Suggest(o, suggest.Options{DNSMode: r.URL.Query().Get("dns") == "1"})
	if err := suggest.Write(&b, header, entries); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/yaml; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="policy.yaml"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
}

// hostObservations reads the stored events of the filter that the query
// names (hostname=H) into Observations, for /api/v1/suggest and
// /api/v1/observed. Without a hostname, or when the store fails, it
// answers the request itself and reports false.
func (s *Server) hostObservations(w http.ResponseWriter, r *http.Request) (host string, o *suggest.Observations, partial, ok bool) {
	host = r.URL.Query().Get("hostname")
	if host == "" {
		writeError(w, http.StatusBadRequest, "hostname: required, the filter's HOSTNAME as its events carry it")
		return "", nil, false, false
	}
	o, partial, err := s.observations(r, host)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return "", nil, false, false
	}
	return host, o, partial, true
}

// observations reads the stored events of the filter host, oldest first,
// into Observations (bounded by their default MaxDestinations). partial
// reports that it stopped at suggestMaxRecords records.
func (s *Server) observations(r *http.Request, host string) (o *suggest.Observations, partial bool, err error) {
	o = &suggest.Observations{}
	q := Query{Limit: streamChunk, Oldest: true}
	for read := 0; ; {
		if read >= suggestMaxRecords {
			return o, true, nil
		}
		recs, more, err := s.store.Query(r.Context(), q)
		if err != nil {
			return nil, false, err
		}
		for i := range recs {
			if recs[i].Event.Host == host {
				o.Add(recs[i].Event)
			}
			q.After = recs[i].ID
		}
		read += len(recs)
		if !more {
			return o, false, nil
		}
	}
}
