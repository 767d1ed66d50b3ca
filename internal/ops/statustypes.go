package ops

import "time"

// StatusAPIVersion and StatusKind identify the JSON and YAML form of
// `status`, documented in docs/status-check.md.
const (
	StatusAPIVersion = "status.singleton.dev/v1"
	StatusKind       = "SingletonStatusList"
)

// StatusList is `status -o json|yaml`: every singleton in scope.
type StatusList struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Partial is true when something in scope could not be read; Errors
	// says what, one line each.
	Partial bool     `json:"partial"`
	Errors  []string `json:"errors"`
	// Items are the singletons, ordered by namespace and name.
	Items []Singleton `json:"items"`
}

// Singleton is the state of one Deployment annotated singleton: "true".
type Singleton struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Mode is "replicas" or "election"; "invalid" when the annotations
	// cannot be read (the webhook denies such a Deployment).
	Mode string `json:"mode"`
	// Enforcement is "mutate" or "deny".
	Enforcement string `json:"enforcement"`
	// Enforced is true when the webhook has admitted the Deployment as a
	// singleton: its pod template carries the marks the webhook writes.
	// NotEnforced then says why not.
	Enforced    bool   `json:"enforced"`
	NotEnforced string `json:"notEnforced,omitempty"`
	// PodsAlive counts the Pods that may run containers: not gated, not
	// terminal (Terminating ones count); null when the Pods could not be
	// read. For a Deployment not enforced
	// yet, the Deployment's own status.replicas.
	PodsAlive *int `json:"podsAlive"`
	// Active is the Pod that runs (replicas) or leads (election); null:
	// none.
	Active *ActivePod `json:"active"`
	// Lease is the election Lease (election mode only).
	Lease *LeaseState `json:"lease,omitempty"`
	// Waiting are the Pods held by the scheduling gate, oldest first.
	Waiting []WaitingPod `json:"waiting"`
}

// ActivePod is the Pod that runs or leads.
type ActivePod struct {
	Pod   string `json:"pod"`
	Node  string `json:"node"`
	Phase string `json:"phase"`
	// Since is the Pod's creation (replicas) or when it acquired the
	// Lease (election).
	Since time.Time `json:"since"`
}

// LeaseState is an election Lease as read.
type LeaseState struct {
	Name string `json:"name"`
	// Found is false when no Lease of that name exists (yet).
	Found bool `json:"found"`
	// Holder is the holder's identity, the Pod name; empty: released.
	Holder string `json:"holder"`
	// Epoch is the fencing token the sidecars give the app (elector.Epoch).
	Epoch int64 `json:"epoch"`
	// ValidUntil is renewTime + leaseDurationSeconds: until then no
	// standby may take over. Valid says whether that is still ahead and
	// the Lease has a holder.
	ValidUntil *time.Time `json:"validUntil"`
	Valid      bool       `json:"valid"`
	// DurationSeconds is the Lease's leaseDurationSeconds.
	DurationSeconds int32 `json:"durationSeconds"`
	// ManagedByWebhook is false for a Lease the webhook did not create.
	ManagedByWebhook bool `json:"managedByWebhook"`

	acquired time.Time
}

// WaitingPod is a Pod held by the scheduling gate.
type WaitingPod struct {
	Pod string `json:"pod"`
	// Since is the Pod's creation: it has waited since then.
	Since time.Time `json:"since"`
	// WaitsFor is the Pod of the same singleton still alive; empty: none,
	// the gate controller has yet to lift the gate.
	WaitsFor string `json:"waitsFor"`
	// BlockerState is "running", "terminating" (within its grace period)
	// or "overdue" (Terminating past its grace period: its node is likely
	// lost); empty with no blocker.
	BlockerState string `json:"blockerState"`
	BlockerNode  string `json:"blockerNode"`
	// GraceEnds is when the blocker's grace period ends, if it is deleted.
	GraceEnds *time.Time `json:"graceEnds"`
}
