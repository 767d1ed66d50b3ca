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
package webhook
