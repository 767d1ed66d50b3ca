package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/klog/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"
)

// maxRequestBytes is the largest request body accepted: 7 MiB, as in
// controller-runtime. An AdmissionReview carries at most two objects of
// at most 3 MiB (the API server's own limit), plus under 1 MiB of envelope.
const maxRequestBytes = 7 << 20

// RequestTimeout bounds the handling of one request, from reading its body
// to answering. It is shorter than the webhook configuration's
// timeoutSeconds (5 s), so the API server always gets our answer rather than
// its own timeout, and shorter than the shutdown grace period, so in-flight
// reviews finish before the process exits.
const RequestTimeout = 4 * time.Second

// HTTPHandler serves one webhook entry: it checks the transport, decodes the
// AdmissionReview, calls the admission handler through controller-runtime's
// admission.Webhook (panic recovery, response completion) and writes the
// answer. See the package documentation for the status-code convention.
type HTTPHandler struct {
	resource string
	hook     *admission.Webhook
	metrics  *Metrics
	log      logr.Logger
	// Timeout replaces RequestTimeout when positive.
	Timeout time.Duration
}

var _ http.Handler = (*HTTPHandler)(nil)

// NewHTTPHandler returns the HTTP handler of the webhook entry for resource
// (ResourceDeployments or ResourceScale). m may be nil: nothing is recorded.
func NewHTTPHandler(resource string, h admission.Handler, m *Metrics) *HTTPHandler {
	return &HTTPHandler{
		resource: resource,
		hook:     &admission.Webhook{Handler: h, LogConstructor: requestLogger},
		metrics:  m,
		log:      logf.Log.WithName("admission"),
	}
}

// fault is a request refused before it reached a handler.
type fault struct {
	status int    // HTTP status, or 200 for an error AdmissionReview
	reason string // errored reason label
	msg    string
}

// ServeHTTP implements http.Handler.
func (s *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	timeout := s.timeout()
	body, f := readBody(w, r, timeout)
	if f != nil {
		s.reject(w, r, f)
		return
	}
	ar, f := decodeReview(body)
	if f != nil && f.status != http.StatusOK {
		s.reject(w, r, f)
		return
	}
	if f != nil {
		s.rejectReview(w, ar, f)
		return
	}
	// The server cancels request contexts when it shuts down; a review in
	// flight is finished anyway, within its own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
	defer cancel()
	o := &outcome{}
	req := admission.Request{AdmissionRequest: *ar.Request}
	resp := s.hook.Handle(withOutcome(ctx, o), req)
	o.classify(&resp)
	s.metrics.count(s.resource, req.Operation, *o)
	s.logAnswer(&req, &resp, o)
	s.write(w, &resp.AdmissionResponse)
}

func (s *HTTPHandler) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return RequestTimeout
}

// readBody checks the method and the content type and reads the body within
// maxRequestBytes and the deadline.
func readBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) ([]byte, *fault) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &fault{http.StatusMethodNotAllowed, ReasonMethod,
			fmt.Sprintf("method %s is not allowed: send an AdmissionReview with POST", clip(r.Method, 32))}
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, &fault{http.StatusUnsupportedMediaType, ReasonContentType,
			fmt.Sprintf("content type %q is not supported: send application/json", clip(ct, 64))}
	}
	tooLarge := &fault{http.StatusRequestEntityTooLarge, ReasonTooLarge,
		fmt.Sprintf("request body is larger than %d bytes", maxRequestBytes)}
	if r.ContentLength > maxRequestBytes {
		return nil, tooLarge
	}
	rc := http.NewResponseController(w)
	// Not supported by every ResponseWriter (httptest): then the server's
	// own timeouts apply.
	_ = rc.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	body, err := readAll(http.MaxBytesReader(w, r.Body, maxRequestBytes), r.ContentLength)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &fault{http.StatusRequestTimeout, ReasonReadBody,
			fmt.Sprintf("request body not received within %s", timeout)}
	case err != nil:
		return nil, &fault{http.StatusBadRequest, ReasonReadBody, fmt.Sprintf("read request body: %v", err)}
	case len(bytes.TrimSpace(body)) == 0:
		return nil, &fault{http.StatusBadRequest, ReasonEmptyBody, "request body is empty: send an AdmissionReview"}
	}
	return body, nil
}

// readAll is io.ReadAll starting from the announced length, so a body of
// known size is read into a single allocation.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > maxRequestBytes {
		size = 512
	}
	b := make([]byte, 0, size+1) // +1: EOF is seen without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// decodeReview decodes an admission.k8s.io/v1 AdmissionReview, its objects
// left raw, with the API server's decoder (case-sensitive field names). A
// body that is not JSON of an object is an HTTP 400; a review of another
// version or kind, or without a request, is a fault with status 200: it is
// answered with an error review.
func decodeReview(body []byte) (*admissionv1.AdmissionReview, *fault) {
	ar := &admissionv1.AdmissionReview{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, ar); err != nil {
		return nil, &fault{http.StatusBadRequest, ReasonMalformed, fmt.Sprintf("decode AdmissionReview: %v", err)}
	}
	return ar, checkReview(ar)
}

// checkReview checks the version, the kind and the presence of a request.
func checkReview(ar *admissionv1.AdmissionReview) *fault {
	if ar.APIVersion != admissionv1.SchemeGroupVersion.String() || ar.Kind != "AdmissionReview" {
		return &fault{http.StatusOK, ReasonWrongReview, fmt.Sprintf(
			"expected an AdmissionReview of apiVersion admission.k8s.io/v1, got apiVersion %q kind %q",
			clip(ar.APIVersion, 64), clip(ar.Kind, 64))}
	}
	if ar.Request == nil {
		return &fault{http.StatusOK, ReasonNoRequest, "the AdmissionReview has no request"}
	}
	return nil
}

// reject answers a transport fault with its HTTP status and a text body.
func (s *HTTPHandler) reject(w http.ResponseWriter, r *http.Request, f *fault) {
	s.metrics.count(s.resource, "", outcome{kind: OutcomeErrored, reason: f.reason})
	s.log.V(1).Info("rejected request", "status", f.status, "reason", f.reason, "message", f.msg,
		"remoteAddr", r.RemoteAddr)
	http.Error(w, f.msg, f.status)
}

// rejectReview answers a review it cannot handle with a well-formed error
// review (HTTP 200, response.status.code 400) echoing the UID if any.
func (s *HTTPHandler) rejectReview(w http.ResponseWriter, ar *admissionv1.AdmissionReview, f *fault) {
	resp := admission.Errored(http.StatusBadRequest, errors.New(f.msg))
	var req *admission.Request
	if ar.Request != nil {
		req = &admission.Request{AdmissionRequest: *ar.Request}
		resp.UID = req.UID
	}
	o := outcome{kind: OutcomeErrored, reason: f.reason}
	if req != nil {
		s.metrics.count(s.resource, req.Operation, o)
	} else {
		s.metrics.count(s.resource, "", o)
	}
	s.logAnswer(req, &resp, &o)
	s.write(w, &resp.AdmissionResponse)
}

// classify completes the outcome the handler marked from its response.
func (o *outcome) classify(resp *admission.Response) {
	switch {
	case !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusForbidden:
		o.kind, o.reason = OutcomeDenied, ""
	case !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusBadRequest:
		o.kind, o.reason = OutcomeErrored, ReasonDecode
	case !resp.Allowed:
		o.kind, o.reason = OutcomeErrored, ReasonInternal
	case o.kind == OutcomeSkipped:
	case len(resp.Patch) > 0:
		o.kind, o.reason = OutcomeMutated, ""
	default:
		o.kind, o.reason = OutcomeUnchanged, ""
	}
}

// logAnswer logs a denial or an error at the default level and everything
// else at V(1). Messages are clipped: they may quote what the user wrote.
func (s *HTTPHandler) logAnswer(req *admission.Request, resp *admission.Response, o *outcome) {
	base := s.log
	if o.kind != OutcomeDenied && o.kind != OutcomeErrored {
		base = base.V(1)
	}
	if !base.Enabled() {
		return
	}
	log := requestLogger(base, req).WithValues("outcome", o.kind)
	if o.reason != "" {
		log = log.WithValues("reason", o.reason)
	}
	if o.mode != "" {
		log = log.WithValues("mode", o.mode)
	}
	var msg string
	var code int32
	if resp.Result != nil {
		msg, code = clip(resp.Result.Message, 1024), resp.Result.Code
	}
	log.Info("answered review", "allowed", resp.Allowed, "code", code, "message", msg,
		"patchBytes", len(resp.Patch), "warnings", len(resp.Warnings))
}

var reviewType = admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")

// write writes an AdmissionReview answer, always admission.k8s.io/v1.
func (s *HTTPHandler) write(w http.ResponseWriter, resp *admissionv1.AdmissionResponse) {
	ar := admissionv1.AdmissionReview{Response: resp}
	ar.SetGroupVersionKind(reviewType)
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&ar); err != nil {
		s.log.Error(err, "write AdmissionReview answer", "requestID", clip(string(resp.UID), 64))
	}
}

// requestLogger puts the request's identity on every line logged about it:
// its UID, the object reference, kind and operation. Never its content.
func requestLogger(base logr.Logger, req *admission.Request) logr.Logger {
	if req == nil {
		return base
	}
	return base.WithValues(
		"requestID", clip(string(req.UID), 64),
		"object", klog.KRef(clip(req.Namespace, 253), clip(req.Name, 253)),
		"kind", clip(req.Kind.Kind, 63),
		"operation", clip(string(req.Operation), 16),
		"dryRun", req.DryRun != nil && *req.DryRun,
	)
}

// clip shortens s to at most n bytes for a log line or a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
