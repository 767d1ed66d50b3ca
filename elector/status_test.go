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
	tests := map[string]struct {
		setup    func(*status)
		wantBody string
	}{
		"a fresh candidate knows no leader": {
			func(*status) {},
			`{"leader":"","self":"app-0","isLeader":false,"since":"2030-01-02T03:04:05Z"}`,
		},
		"a standby names the leader it saw": {
			func(s *status) { s.set("app-1", false, time.Time{}, t1) },
			`{"leader":"app-1","self":"app-0","isLeader":false,"since":"2030-01-02T03:05:05Z"}`,
		},
		"the leader names itself": {
			func(s *status) { s.set("app-0", true, forever, t1) },
			`{"leader":"app-0","self":"app-0","isLeader":true,"since":"2030-01-02T03:05:05Z"}`,
		},
		"a leader past its renew deadline answers standby": {
			func(s *status) { s.set("app-0", true, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), t0) },
			`{"leader":"","self":"app-0","isLeader":false,"since":"2020-01-02T03:04:05Z"}`,
		},
		"an unchanged state keeps its since": {
			func(s *status) { s.set("app-0", true, forever, t1); s.set("app-0", true, forever, t1.Add(time.Hour)) },
			`{"leader":"app-0","self":"app-0","isLeader":true,"since":"2030-01-02T03:05:05Z"}`,
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

func TestHandlerServesHealthAndMetrics(t *testing.T) {
	e, err := New(Config{LeaseName: "app", LeaseNamespace: "ns", Identity: "app-0",
		LeaseDuration: DefaultLeaseDuration, RenewDeadline: DefaultRenewDeadline, RetryPeriod: DefaultRetryPeriod}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/metrics": "singleton_elector_is_leader 0",
	} {
		resp, err := http.Get(srv.URL + path)
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
