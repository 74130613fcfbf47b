package dashboardapi

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/suggest"
)

// observed answers GET /api/v1/observed?hostname=H (&dns=1 for a filter
// in dns mode): the destinations the stored events of that filter show
// its workload reached or tried to, grouped by registrable domain, what
// needs a person first: the suggest package's view, with the entries of
// the policy /api/v1/suggest offers.
func (s *Server) observed(w http.ResponseWriter, r *http.Request) {
	host, o, partial, ok := s.hostObservations(w, r)
	if !ok {
		return
	}
	resp := ObservedResponse{Hostname: host, Events: o.Events, Skipped: o.Skipped, Overflow: o.Overflow,
		Partial: partial, From: o.From.UTC(), To: o.To.UTC(), Groups: []ObservedGroup{}}
	for _, d := range o.Destinations(suggest.Options{DNSMode: r.URL.Query().Get("dns") == "1"}) {
		od := ObservedDestination{Name: d.Name, Proto: d.Proto, Port: d.Port, Verdict: d.Verdict,
			Count: d.Seen.Count, Blocked: d.Seen.Blocked, WouldBlock: d.Seen.WouldBlock,
			First: d.Seen.First.UTC(), Last: d.Seen.Last.UTC(), Entry: d.Entry, Target: unblockTarget(d)}
		if d.Addr.IsValid() {
			od.Addr = d.Addr.String()
		}
		i := slices.IndexFunc(resp.Groups, func(g ObservedGroup) bool { return g.Domain == d.Domain })
		if i < 0 {
			i = len(resp.Groups)
			// Destinations come would-block first: a group's first is its
			// most pressing verdict.
			resp.Groups = append(resp.Groups, ObservedGroup{Domain: d.Domain, Verdict: d.Verdict})
		}
		g := &resp.Groups[i]
		g.Count += od.Count
		g.Blocked += od.Blocked
		g.WouldBlock += od.WouldBlock
		g.Destinations = append(g.Destinations, od)
	}
	// By verdict, then by domain, with the addresses reached without a
	// name after the names of the same verdict.
	slices.SortStableFunc(resp.Groups, func(a, b ObservedGroup) int {
		unnamed := func(g ObservedGroup) int {
			if g.Domain == "" {
				return 1
			}
			return 0
		}
		return cmp.Or(
			cmp.Compare(suggest.Urgency(a.Verdict), suggest.Urgency(b.Verdict)),
			cmp.Compare(unnamed(a), unnamed(b)),
			cmp.Compare(a.Domain, b.Domain),
		)
	})
	writeJSON(w, http.StatusOK, resp)
}

// unblockTarget is what the UI's Allow button asks a remote unblock for,
// so that the filter allows the destination and no more: its name where
// a plain name entry allows it (the entry is the name or a wildcard over
// it), else the suggested entry itself, with its protocol and ports
// ("api.example.com:8443", "tcp/api.example.com:22",
// "tcp/198.51.100.7:5432").
func unblockTarget(d suggest.Destination) string {
	if d.Name == "" {
		return d.Entry
	}
	r, err := policy.ParseNameEntry(d.Entry)
	if err != nil {
		return ""
	}
	if r.Ports.All() {
		return d.Name // this name, not the wildcard that may stand for it
	}
	return d.Entry // on its protocol and ports
}
