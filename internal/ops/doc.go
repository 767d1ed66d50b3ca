// Package ops answers the operator's two questions about singleton-webhook
// in one command each: `status` (every singleton: its mode, the Pod that
// runs or leads, who waits for what) and `check` (what is wrong with the
// install and with each singleton, with a stable code and the command that
// fixes it).
//
// Both read the cluster with the caller's credentials, one list per kind
// (never a request per object), and degrade instead of failing: what could
// not be read is named in one line each, and the answer is marked partial.
// The JSON forms are versioned (StatusAPIVersion, CheckAPIVersion); a
// field is only ever added to a version, never renamed or removed.
package ops
