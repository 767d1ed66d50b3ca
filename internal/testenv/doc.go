// Package testenv runs singleton-webhook against a real control plane:
// etcd and kube-apiserver started by controller-runtime's envtest from
// KUBEBUILDER_ASSETS (bin/k8s, built by `make controlplane`), the project's
// own manifests/mutatingwebhook.yaml installed with its service reference
// rewritten to a local URL, and the webhook run in-process, stoppable and
// restartable on the same port. The webhook is built as `serve` builds it,
// by internal/app's NewManager and Setup: handlers, metrics, controllers and
// probes are the binary's own. It runs as its ServiceAccount (impersonated),
// with manifests/'s RBAC and self-restraint policy installed, so its
// controllers get exactly the powers production gives them.
//
// A suite starts one Env per top-level test:
//
//	env := testenv.Start(t, testenv.Options{})
//	hook := env.StartWebhook(t, testenv.WebhookOptions{})
//	out, errOut, err := env.Kubectl(t, manifest, "apply", "-f", "-")
//	hook.Stop(t) // the API server now finds nobody at the webhook's URL
//	hook.Start(t)
//
// Everything started is stopped by t.Cleanup. The parts that need no
// *testing.T (ModuleRoot, StartControlPlane, LocalWebhookConfiguration,
// InstallWebhookConfiguration, WaitForMutation) also serve `make run`.
//
// When KUBEBUILDER_ASSETS is unset, Start fails the test with a message
// saying how to set it: the integration tier never skips.
package testenv
