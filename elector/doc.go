// Package elector is the leader-election sidecar of election mode
// (`singleton-webhook elect`): N warm replicas of an application share a
// coordination.k8s.io/v1 Lease through client-go's leaderelection, and the
// sidecar tells its application whether it leads, three ways:
//
//   - the file <state-dir>/leader, present only while leading, written
//     atomically (temporary file, then rename) and removed on loss, on
//     exit, and at start (the shared volume outlives a crashed container);
//     its modification time is the last successful renewal, so a reader can
//     also treat a file older than the renew deadline as stale, which covers
//     a sidecar killed before it could remove it;
//   - GET /leader on the listen address: {"leader", "self", "isLeader",
//     "since"}; also GET /healthz and GET /metrics (Prometheus);
//   - the label singleton.dev/role=leader|standby on the own Pod, so that a
//     Service can select the leader.
//
// # Safety: when the signals drop
//
// A standby takes the Lease over only after it has seen no change of the
// Lease record for leaseDuration, measured on its own clock from the moment
// it read a changed record. Any record it reads was written after the
// leader sent the write, so if the leader's last successful write was sent
// at time T, no standby can take over before T + leaseDuration.
//
// client-go does not bound the leader's side as tightly: after a renewal
// it sleeps retryPeriod and then retries for up to renewDeadline, and only
// then calls OnStoppedLeading, at up to T + retryPeriod + renewDeadline,
// which the validation rule (lease > renew > 1.2 × retry) does not keep
// below T + leaseDuration (for example 3s/2.5s/2s). So the sidecar does not
// rely on OnStoppedLeading: every write of the Lease goes through a wrapper
// of the resource lock that records T, the time just before the request
// was sent, and a local timer drops the signals at T + renewDeadline. That
// leaves leaseDuration - renewDeadline as the margin for clock-rate skew,
// for the signals to reach the application, and for the sidecar to be
// scheduled at all: a process starved of CPU cannot remove a file on time,
// so GET /leader also compares the deadline itself on every request, and
// the leader file's modification time lets readers do the same. The timer
// uses Go's monotonic clock, so wall-clock steps do not move it.
//
// On a loss the file goes first (the signal applications rely on most),
// then the HTTP state, then the label. The label needs the API server: when
// the Lease is lost because the API server is unreachable, the label may
// keep saying "leader" until it can be patched again, so in a network
// partition the label is best effort; the file and GET /leader are not.
//
// A graceful stop (SIGTERM, ctx cancelled) releases the Lease
// (ReleaseOnCancel), so a standby can take it at once, but only after the
// signals are down: the wrapper turns every release into "drop the file and
// the HTTP state, wait (up to the renew deadline) for the label to say
// standby, then write". If the label cannot be confirmed, the Lease is not
// released and expires instead. The wrapper also refuses to release a Lease
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
