package app

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
)

// fakeReviews answers TokenReviews and SubjectAccessReviews as the API
// server would for a fixed set of tokens and allowed users, and counts
// them.
type fakeReviews struct {
	users              map[string]string // token → user name
	allowed            map[string]bool   // user name → may get /metrics
	fail               bool              // every review fails
	failWith           []error           // the next reviews fail with these, one each
	tokenN, accessN    int
	clock              *testingclock.FakeClock
	lastPath, lastVerb string
}

func (f *fakeReviews) reviewer(t *testing.T) *reviewer {
	t.Helper()
	cs := fake.NewClientset()
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.tokenN++
		if err := f.failure(); err != nil {
			return true, nil, err
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		if name, ok := f.users[tr.Spec.Token]; ok {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true,
				User: authenticationv1.UserInfo{Username: name, Groups: []string{"system:authenticated"}}}
		} else {
			tr.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.accessN++
		if err := f.failure(); err != nil {
			return true, nil, err
		}
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		f.lastPath, f.lastVerb = sar.Spec.NonResourceAttributes.Path, sar.Spec.NonResourceAttributes.Verb
		sar.Status.Allowed = f.allowed[sar.Spec.User] && sar.Spec.NonResourceAttributes.Path == "/metrics" &&
			sar.Spec.NonResourceAttributes.Verb == "get"
		return true, sar, nil
	})
	f.clock = testingclock.NewFakeClock(time.Unix(1_000_000, 0))
	r := newReviewer(cs.AuthenticationV1().TokenReviews(), cs.AuthorizationV1().SubjectAccessReviews(), f.clock)
	r.backoff.Duration = time.Millisecond
	return r
}

// failure is the error of the next review, if it fails.
func (f *fakeReviews) failure() error {
	if len(f.failWith) > 0 {
		err := f.failWith[0]
		f.failWith = f.failWith[1:]
		return err
	}
	if f.fail {
		return errors.New("the API server is away")
	}
	return nil
}

// scrapeWith sends GET path through the filter with the Authorization
// header auth (none if empty) and returns the status and whether the
// metrics handler saw the request, and with which Authorization header.
func scrapeWith(t *testing.T, r *reviewer, path, auth string) (int, bool) {
	t.Helper()
	served := false
	h, err := r.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		served = true
		if req.Header.Get("Authorization") != "" {
			t.Error("the metrics handler sees the bearer token")
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, served
}

func TestMetricsAuth(t *testing.T) {
	f := &fakeReviews{
		users:   map[string]string{"reader-token": "reader", "stranger-token": "stranger"},
		allowed: map[string]bool{"reader": true},
	}
	r := f.reviewer(t)
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized},
		{"another scheme", "/metrics", "Basic cmVhZGVyOnB3", http.StatusUnauthorized},
		{"an empty bearer token", "/metrics", "Bearer ", http.StatusUnauthorized},
		{"a token the API server does not know", "/metrics", "Bearer forged", http.StatusUnauthorized},
		{"a user without the role", "/metrics", "Bearer stranger-token", http.StatusForbidden},
		{"a reader, on another path", "/debug", "Bearer reader-token", http.StatusForbidden},
		{"a reader", "/metrics", "Bearer reader-token", http.StatusOK},
		{"a reader, scheme in lower case", "/metrics", "bearer reader-token", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, served := scrapeWith(t, r, tc.path, tc.auth)
			if code != tc.want || served != (tc.want == http.StatusOK) {
				t.Errorf("HTTP %d, served %t; want %d", code, served, tc.want)
			}
		})
	}
	if f.lastVerb != "get" {
		t.Errorf("verb %q in the access review, want get", f.lastVerb)
	}
}

func TestMetricsAuthRemembersReviews(t *testing.T) {
	f := &fakeReviews{users: map[string]string{"reader-token": "reader", "stranger-token": "stranger"},
		allowed: map[string]bool{"reader": true}}
	r := f.reviewer(t)
	for range 3 {
		if code, _ := scrapeWith(t, r, "/metrics", "Bearer reader-token"); code != http.StatusOK {
			t.Fatalf("HTTP %d, want 200", code)
		}
	}
	if f.tokenN != 1 || f.accessN != 1 {
		t.Fatalf("3 scrapes made %d token and %d access reviews, want 1 and 1", f.tokenN, f.accessN)
	}
	f.clock.Step(tokenCacheTTL + time.Nanosecond)
	scrapeWith(t, r, "/metrics", "Bearer reader-token")
	if f.tokenN != 2 || f.accessN != 1 {
		t.Errorf("after %s: %d token and %d access reviews, want 2 and 1 (the allow lasts %s)", tokenCacheTTL, f.tokenN, f.accessN, allowCacheTTL)
	}
	// A deny is remembered for a shorter time than an allow.
	scrapeWith(t, r, "/metrics", "Bearer stranger-token")
	scrapeWith(t, r, "/metrics", "Bearer stranger-token")
	if f.accessN != 2 {
		t.Fatalf("%d access reviews, want 2", f.accessN)
	}
	f.clock.Step(denyCacheTTL + time.Nanosecond)
	if code, _ := scrapeWith(t, r, "/metrics", "Bearer stranger-token"); code != http.StatusForbidden || f.accessN != 3 {
		t.Errorf("after %s: HTTP %d and %d access reviews, want 403 and 3", denyCacheTTL, code, f.accessN)
	}
}

func TestMetricsAuthFailsClosedWhenTheAPIServerFails(t *testing.T) {
	f := &fakeReviews{users: map[string]string{"reader-token": "reader"}, allowed: map[string]bool{"reader": true}, fail: true}
	r := f.reviewer(t)
	if code, served := scrapeWith(t, r, "/metrics", "Bearer reader-token"); code != http.StatusInternalServerError || served {
		t.Errorf("token review failing: HTTP %d, served %t; want 500, not served", code, served)
	}
	// An error is not remembered: once the API server answers, so does the filter.
	f.fail = false
	if code, _ := scrapeWith(t, r, "/metrics", "Bearer reader-token"); code != http.StatusOK {
		t.Errorf("after the API server came back: HTTP %d, want 200", code)
	}
	f.fail = true
	r.decisions = cache.NewLRUExpireCache(reviewCacheSize)
	if code, served := scrapeWith(t, r, "/metrics", "Bearer reader-token"); code != http.StatusInternalServerError || served {
		t.Errorf("access review failing: HTTP %d, served %t; want 500, not served", code, served)
	}
}

func TestMetricsAuthRetriesWhatUpstreamRetries(t *testing.T) {
	busy := apierrors.NewTooManyRequests("slow down", 1)
	internal := apierrors.NewInternalError(errors.New("etcd leader changed"))
	tests := map[string]struct {
		failWith     []error
		want, tokenN int
	}{
		"too many requests, then an answer":       {failWith: []error{busy}, want: http.StatusOK, tokenN: 2},
		"an internal error twice, then an answer": {failWith: []error{internal, internal}, want: http.StatusOK, tokenN: 3},
		"a timeout, then an answer":               {failWith: []error{apierrors.NewTimeoutError("slow", 0)}, want: http.StatusOK, tokenN: 2},
		"a refusal is not retried": {failWith: []error{apierrors.NewForbidden(schema.GroupResource{
			Group: "authentication.k8s.io", Resource: "tokenreviews"}, "", errors.New("no"))},
			want: http.StatusInternalServerError, tokenN: 1},
		"transient failures past the last step": {failWith: []error{busy, busy, busy, busy, busy, busy},
			want: http.StatusInternalServerError, tokenN: 5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := &fakeReviews{users: map[string]string{"reader-token": "reader"}, allowed: map[string]bool{"reader": true},
				failWith: tc.failWith}
			if code, _ := scrapeWith(t, f.reviewer(t), "/metrics", "Bearer reader-token"); code != tc.want || f.tokenN != tc.tokenN {
				t.Errorf("HTTP %d after %d token reviews, want %d after %d", code, f.tokenN, tc.want, tc.tokenN)
			}
		})
	}
	t.Run("an access review is retried too", func(t *testing.T) {
		// The token review answers (nil), the access review fails once.
		f := &fakeReviews{users: map[string]string{"reader-token": "reader"}, allowed: map[string]bool{"reader": true},
			failWith: []error{nil, internal}}
		if code, _ := scrapeWith(t, f.reviewer(t), "/metrics", "Bearer reader-token"); code != http.StatusOK || f.tokenN != 1 || f.accessN != 2 {
			t.Errorf("HTTP %d after %d token and %d access reviews, want 200 after 1 and 2", code, f.tokenN, f.accessN)
		}
	})
}
