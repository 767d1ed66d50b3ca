package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	admissionv1 "k8s.io/api/admission/v1"
	sigsjson "sigs.k8s.io/json"
)

// Review answers an admission.k8s.io/v1 AdmissionReview exactly as the server
// would: the request goes through the same HTTP handler the server mounts,
// in memory. An input that is not an AdmissionReview with a request is an
// error, so the command can fail loudly rather than print an error review.
func Review(ctx context.Context, h Handlers, in []byte) ([]byte, error) {
	// Field names match case-sensitively, as in the server's decoder: a
	// review the server would refuse is refused here too.
	var ar admissionv1.AdmissionReview
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(in, &ar); err != nil {
		return nil, fmt.Errorf("read AdmissionReview: %w", err)
	}
	gvk := ar.GroupVersionKind()
	if gvk != admissionv1.SchemeGroupVersion.WithKind("AdmissionReview") {
		return nil, fmt.Errorf("read AdmissionReview: got apiVersion %q kind %q, want admission.k8s.io/v1 AdmissionReview",
			ar.APIVersion, ar.Kind)
	}
	if ar.Request == nil {
		return nil, errors.New("read AdmissionReview: it has no request")
	}
	path := pathFor(ar.Request)
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(in))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.routes()[path].ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("review: handler answered HTTP %d: %s", rec.Code, rec.Body.String())
	}
	return rec.Body.Bytes(), nil
}
