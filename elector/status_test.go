package elector

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLeaderHandler(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	forever := time.Now().Add(time.Hour)
	foreverText := forever.Round(0).Format(time.RFC3339Nano)
	tests := map[string]struct {
		setup    func(*status)
		wantBody string
	}{
		"a fresh candidate knows no leader": {
			func(*status) {},
			`{"leader":"","self":"app-0","isLeader":false,"since":"2030-01-02T03:04:05Z","epoch":0}`,
		},
		"a standby names the leader it saw": {
			func(s *status) { s.follow("app-1", t1) },
			`{"leader":"app-1","self":"app-0","isLeader":false,"since":"2030-01-02T03:05:05Z","epoch":0}`,
		},
		"the leader names itself, its epoch and its deadline": {
			func(s *status) { s.lead(42, forever, t1) },
			`{"leader":"app-0","self":"app-0","isLeader":true,"since":"2030-01-02T03:05:05Z","epoch":42,"validUntil":"` + foreverText + `"}`,
		},
		"a leader past its deadline answers standby": {
			func(s *status) { s.lead(42, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), t0) },
			`{"leader":"","self":"app-0","isLeader":false,"since":"2020-01-02T03:04:05Z","epoch":0}`,
		},
		"an unchanged state keeps its since": {
			func(s *status) { s.lead(42, forever, t1); s.lead(42, forever, t1.Add(time.Hour)) },
			`{"leader":"app-0","self":"app-0","isLeader":true,"since":"2030-01-02T03:05:05Z","epoch":42,"validUntil":"` + foreverText + `"}`,
		},
		"a leader that stepped down clears its epoch": {
			func(s *status) { s.lead(42, forever, t1); s.follow("", t1.Add(time.Hour)) },
			`{"leader":"","self":"app-0","isLeader":false,"since":"2030-01-02T04:05:05Z","epoch":0}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStatus("app-0", t0)
			tc.setup(s)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/leader", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status code %d, want 200", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if got := rec.Body.String(); got != tc.wantBody+"\n" {
				t.Errorf("body %s, want %s", got, tc.wantBody)
			}
			var st Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
				t.Errorf("body does not decode as Status: %v", err)
			}
		})
	}
}

func TestLeaderHandlerRefusesWrites(t *testing.T) {
	rec := httptest.NewRecorder()
	newStatus("app-0", time.Now()).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/leader", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /leader: status code %d, want 405", rec.Code)
	}
}

func TestMetricsAreNotOnTheLeaderAddress(t *testing.T) {
	e, err := New(Config{LeaseName: "app", LeaseNamespace: "ns", Identity: "app-0",
		LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /metrics on the leader address: status code %d, want 404", rec.Code)
	}
}

func TestHandlerServesHealthAndMetrics(t *testing.T) {
	e, err := New(Config{LeaseName: "app", LeaseNamespace: "ns", Identity: "app-0",
		LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	msrv := httptest.NewServer(e.MetricsHandler())
	defer msrv.Close()
	for url, want := range map[string]string{
		srv.URL + "/healthz":  "ok",
		srv.URL + "/leader":   `"isLeader":false`,
		msrv.URL + "/metrics": "singleton_elector_is_leader 0",
		msrv.URL + "/healthz": "ok",
	} {
		path := url
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %q, want 200 containing %q", path, resp.StatusCode, body, want)
		}
	}
}
