// Package elector is the leader-election sidecar of election mode
// (`singleton-webhook elect`): N warm replicas of an application share a
// coordination.k8s.io/v1 Lease through client-go's leaderelection, and the
// sidecar tells its application whether it leads, two ways, both carrying
// the same JSON {"leader", "self", "isLeader", "since", "epoch",
// "validUntil"}:
//
//   - GET /leader on 127.0.0.1 (the Pod's own containers only), which
//     compares the deadline itself on every request; also GET /healthz.
//     GET /metrics (Prometheus) is on a separate address, off by default;
//   - the file <state-dir>/leader, present only while leading, written
//     atomically (temporary file, then rename), rewritten when a renewal
//     moves validUntil, and removed on loss, on exit, and at start (the
//     shared volume outlives a crashed container). A killed or stopped
//     sidecar cannot remove it, so readers treat it as absent once its
//     validUntil has passed.
//
// epoch is a fencing token: it grows with every change of leader, also
// across a deleted and recreated Lease (see Epoch). The Pod label
// singleton.dev/role, which a leader Service selects, is not the sidecar's:
// the webhook's controller sets it from the Lease, so the sidecar needs no
// Pod permissions, and a partitioned leader's label turns to standby when
// its Lease expires.
//
// # Safety: when the signals drop
//
// A standby takes the Lease over only after it has seen no change of the
// Lease record for leaseDuration, measured on its own clock from the moment
// it read a changed record. client-go compares records as JSON, in which
// the renew time has whole seconds: every renewal the leader makes within
// one second of its clock looks the same to a standby as the first one of
// that second. So the moment that counts is F, when the leader sent the
// first write of the record that its last successful renewal wrote:
//
//   - the standby that acquires read, just before its write, a record equal
//     to the one it had observed, and its write is conditioned on that
//     read's resourceVersion, so no write of the leader landed in between:
//     the leader's last successful renewal wrote that same record R;
//   - the standby observed R when it first read it, after some write of R
//     landed, and every write of R was sent at F or later;
//   - so the takeover comes no earlier than F + leaseDuration on the
//     standby's clock.
//
// The leader does not rely on OnStoppedLeading, which client-go calls up
// to retryPeriod + renewDeadline after the last renewal. Every write of
// the Lease goes through a wrapper of the resource lock, which remembers
// when the first write of each record was sent (F, from the monotonic
// clock, so wall-clock steps do not move it), and a local timer drops the
// signals at F + renewDeadline. A renewal that comes back after that ends
// the term rather than raising the signals again.
//
// sidecar.Timings holds the rule that keeps F + renewDeadline before
// F + leaseDuration: renewDeadline <= leaseDuration − (2% of
// leaseDuration + 250ms). The 2% covers clocks whose rates differ by up to
// 1% each way (the leader's deadline measured on a slow clock, the
// standby's lease on a fast one); the 250ms is for the sidecar to drop its
// signals on a loaded node. Since F can be up to a second before the
// renewal, the rule also asks renewDeadline > 1s + 1.2 × retryPeriod, so
// the renewals keep the signals up. A process starved of CPU cannot remove
// a file on time, so GET /leader compares the deadline itself on every
// request, and the leader file carries it (validUntil) for readers to do
// the same. For example, at 2s/1.5s/0.3s the leader drops its signals at
// F + 1.5s, and takeovers come after F + 2s.
//
// On a loss the file goes first (the signal applications rely on most),
// then the HTTP state.
//
// A graceful stop (SIGTERM, ctx cancelled) releases the Lease
// (ReleaseOnCancel), so a standby can take it at once, but only after the
// signals are down: the wrapper turns every release into "drop the file and
// the HTTP state, then write". The wrapper also refuses to release a Lease
// whose last observed holder is another candidate, which client-go's release
// would otherwise clear after a lost term.
//
// After losing the Lease the process stays a candidate: client-go's Run
// returns, and a new term starts, so a leader cut off from the API server
// rejoins as a standby when the network heals.
//
// Standbys optionally watch the Lease (Config.WatchLease) and try to
// acquire it as soon as it is released, instead of at their next retry.
package elector
