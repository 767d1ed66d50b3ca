package ops

// Codes of check's findings. A code keeps its meaning for good: alerts'
// runbooks and scripts key on it. New findings get new codes.
const (
	// CodeWebhookConfigurationMissing: the MutatingWebhookConfiguration is
	// absent; nothing is enforced.
	CodeWebhookConfigurationMissing = "SW101"
	// CodeCABundleMismatch: the caBundle does not verify the certificate
	// the webhook serves; the API server refuses every singleton write.
	CodeCABundleMismatch = "SW102"
	// CodeWebhookUnreachable: the webhook's URL does not answer.
	CodeWebhookUnreachable = "SW103"
	// CodeNoReadyEndpoints: the webhook's Service has no ready endpoint.
	CodeNoReadyEndpoints = "SW104"
	// CodeProbeNotMutated: a server-side dry-run create of a singleton came
	// back refused or unmutated.
	CodeProbeNotMutated = "SW105"
	// CodeServingCertExpiring: the served certificate ends soon.
	CodeServingCertExpiring = "SW106"
	// CodeControllersNotLeading: no replica holds the controllers' Lease;
	// gates are not lifted, role labels not set.
	CodeControllersNotLeading = "SW107"
	// CodeTwoPodsAlive: two Pods of a replicas-mode singleton may run.
	CodeTwoPodsAlive = "SW201"
	// CodeGateOverdue: a Pod is gated behind one Terminating past its grace
	// period, most likely on a lost node.
	CodeGateOverdue = "SW202"
	// CodeNoLeader: an election singleton has had no valid leader for
	// longer than its lease duration.
	CodeNoLeader = "SW203"
	// CodeRoleLabelMismatch: the role label disagrees with the Lease.
	CodeRoleLabelMismatch = "SW204"
	// CodeSidecarOutdated: the injected sidecar is older than the webhook.
	CodeSidecarOutdated = "SW205"
	// CodeLeaseNotOwned: the election Lease was not made by the webhook.
	CodeLeaseNotOwned = "SW206"
	// CodeNodeNameTemplate: the pod template sets nodeName, which bypasses
	// the scheduler and so the scheduling gate.
	CodeNodeNameTemplate = "SW207"
	// CodeExcludedNamespace: an annotated Deployment where the webhook does
	// not apply (excluded or opted-out namespace).
	CodeExcludedNamespace = "SW208"
	// CodeNotAdmitted: an annotated Deployment the webhook never admitted.
	CodeNotAdmitted = "SW209"
)

// codeNames are the findings' names, by code.
var codeNames = map[string]string{
	CodeWebhookConfigurationMissing: "WebhookConfigurationMissing",
	CodeCABundleMismatch:            "CABundleMismatch",
	CodeWebhookUnreachable:          "WebhookUnreachable",
	CodeNoReadyEndpoints:            "NoReadyEndpoints",
	CodeProbeNotMutated:             "ProbeNotMutated",
	CodeServingCertExpiring:         "ServingCertExpiring",
	CodeControllersNotLeading:       "ControllersNotLeading",
	CodeTwoPodsAlive:                "TwoPodsAlive",
	CodeGateOverdue:                 "GateOverdue",
	CodeNoLeader:                    "NoLeader",
	CodeRoleLabelMismatch:           "RoleLabelMismatch",
	CodeSidecarOutdated:             "SidecarOutdated",
	CodeLeaseNotOwned:               "LeaseNotOwned",
	CodeNodeNameTemplate:            "NodeNameTemplate",
	CodeExcludedNamespace:           "ExcludedNamespace",
	CodeNotAdmitted:                 "NotAdmitted",
}
