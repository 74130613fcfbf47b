package dashboardapi

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/g0lab/g0efilter/events"
)

// benchBatch is a realistic batch: 256 events of about 300 bytes.
func benchBatch(b *testing.B) []byte {
	evs := make([]events.Event, 256)
	for i := range evs {
		evs[i] = ev(i, events.Blocked, events.HTTPS)
		evs[i].Flow = uint64(i + 1)
	}
	data, err := encodeJSON(evs)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func encodeJSON(evs []events.Event) ([]byte, error) {
	data, n := encodeBatch(evs)
	if n != len(evs) {
		return nil, events.ErrInvalid
	}
	return data, nil
}

func benchIngest(b *testing.B, store Store) {
	s := NewServer(ServerConfig{APIKey: testKey, Store: store, RateRPS: -1})
	defer s.Close()
	body := benchBatch(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/logs", bytes.NewReader(body))
		r.Header.Set(APIKeyHeader, testKey)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestMemory measures ingest into the memory store, in batches
// of 256 events, through the handler (JSON decoding, validation, storing).
func BenchmarkIngestMemory(b *testing.B) { benchIngest(b, NewMemoryStore(0)) }

// BenchmarkIngestSQLite measures the same into an SQLite file.
func BenchmarkIngestSQLite(b *testing.B) {
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "events.db"), SQLiteConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchIngest(b, s)
}

// BenchmarkStreamFanout100 measures how long a batch of 256 events takes to
// reach 100 stream clients over real connections.
func BenchmarkStreamFanout100(b *testing.B) {
	const clients = 100
	s := NewServer(ServerConfig{APIKey: testKey, RateRPS: -1, Store: NewMemoryStore(100_000)})
	hs := httptest.NewServer(s)
	defer hs.Close()
	defer s.Close()

	type reader struct {
		sc   *bufio.Scanner
		resp *http.Response
	}
	readers := make([]reader, clients)
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}
	hc := &http.Client{Transport: tr}
	for i := range readers {
		resp, err := hc.Get(hs.URL + "/api/v1/events")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		if !sc.Scan() { // the retry: line
			b.Fatal("no retry line")
		}
		readers[i] = reader{sc: sc, resp: resp}
	}
	body := benchBatch(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/logs", bytes.NewReader(body)).WithContext(ctx)
		r.Header.Set(APIKeyHeader, testKey)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var wg sync.WaitGroup
		for i := range readers {
			wg.Go(func() {
				for n := 0; n < 256 && readers[i].sc.Scan(); {
					if strings.HasPrefix(readers[i].sc.Text(), "data: ") {
						n++
					}
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.N*256*clients)/b.Elapsed().Seconds(), "deliveries/s")
}
