// Package webhook is the admission side of singleton-webhook: handlers for
// apps/v1 Deployments and their scale subresource, the HTTPS server that
// hosts them, and the offline mutate/review commands that run the very same
// handlers without a cluster.
//
// Handlers decode, call package patches, and answer. The conventions:
//   - a Deployment that is not a singleton is allowed with no patch and no
//     warning;
//   - a refusal caused by the user's annotations or spec is Denied with the
//     message from patches, which names the field, the value and the fix;
//   - an object that cannot be decoded is Errored with code 400;
//   - a failure of our own is Errored with code 500.
//
// The patch is always computed against the object as the API server sent it.
// The Deployment handler answers as controller-runtime's defaulter does: the
// typed Deployment, a mutated copy from package patches, and the JSON patch
// from the raw object to the mutated copy's encoding
// (admission.PatchResponseFromRaw), without the operations that only say how
// the Go type reads the raw object, so unknown fields survive (patchFor).
//
// # Status codes
//
// One rule, applied by HTTPHandler in front of every handler and by the
// offline review command (which goes through the same HTTPHandler): a fault
// of the transport, which the API server never commits, gets a real HTTP
// status and a text body; anything that decoded as an AdmissionReview gets a
// well-formed admission.k8s.io/v1 AdmissionReview with HTTP 200, the answer
// in response.status.code, and the request's UID echoed when it has one.
//
//	405  a method other than POST (with Allow: POST)
//	415  a Content-Type other than application/json (parameters allowed)
//	413  a body over maxRequestBytes (7 MiB, as in controller-runtime)
//	408  a body not received within RequestTimeout
//	400  an empty body, or one that is not JSON of an object
//	200  an AdmissionReview, answered with response.status.code:
//	       400  not admission.k8s.io/v1 AdmissionReview (v1beta1 included: the
//	            webhook configuration asks for v1 only), no request, or an
//	            object that does not decode (the decoder's reason)
//	       403  denied: the user's annotations or spec, and how to fix them
//	       500  our own failure, a recovered panic included
//	       200  allowed: mutated (with a JSON patch), unchanged, or skipped:
//	            operations other than CREATE/UPDATE (UPDATE for Scales),
//	            kinds other than Deployment/Scale, non-singletons; each
//	            skip is logged at V(1) and counted with its reason
//
// Field names are matched case-sensitively and the last of duplicate keys
// wins, as in the API server's own decoder.
//
// # Timeouts and shutdown
//
// A review is handled within RequestTimeout (4 s), shorter than the
// webhook configuration's timeoutSeconds (5 s), so the API server gets our
// answer rather than its own timeout: the body must arrive within it, and
// the handler's context (the parent lookup of Scales) carries it as its
// deadline. The server's shutdown does not cancel a review in flight: it
// finishes within its deadline, which is shorter than the shutdown grace
// period of serve.
//
// # Metrics and logs
//
// Metrics counts every answer in singleton_webhook_admissions_total
// {resource, operation, mode, outcome, reason}; controller-runtime's server
// times it in controller_runtime_webhook_latency_seconds{webhook} (the
// path). Every log line about a review carries its UID, the object's
// namespace/name, kind and operation, never the object: denials and errors
// at the default level, everything else at V(1). Messages are clipped.
package webhook
