package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// WebhookUser is the webhook's ServiceAccount in manifests/, as the API
// server names it in requests (and in the self-restraint policy).
const WebhookUser = "system:serviceaccount:singleton-system:singleton-webhook"

// SelfRestraintMessage starts every refusal of manifests/selfrestraint.yaml.
const SelfRestraintMessage = "singleton-webhook self-restraint:"

// identityManifests give the webhook its identity, its permissions and
// their fence, in the order they apply: the files of manifests/ that
// production installs for the same purpose.
var identityManifests = []string{"namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "selfrestraint.yaml"}

// AsWebhook returns a copy of cfg that impersonates the webhook's
// ServiceAccount, with the groups the API server gives a ServiceAccount:
// every request is then authorized by manifests/rbac.yaml alone and held
// by manifests/selfrestraint.yaml, as in production.
func AsWebhook(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: WebhookUser,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:singleton-system", "system:authenticated"}}
	return c
}

// InstallWebhookIdentity applies, with an administrator's cfg and
// server-side apply, the webhook's Namespace, ServiceAccount, RBAC and
// self-restraint policy from root/manifests, then waits until the API
// server enforces the policy.
func InstallWebhookIdentity(ctx context.Context, cfg *rest.Config, root string) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("install the webhook's identity: %w", err)
	}
	for _, f := range identityManifests {
		objs, err := readObjects(filepath.Join(root, "manifests", f))
		if err != nil {
			return fmt.Errorf("install the webhook's identity: %w", err)
		}
		for _, o := range objs {
			err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o),
				client.FieldOwner("singleton-webhook-tests"), client.ForceOwnership)
			if err != nil {
				return fmt.Errorf("install the webhook's identity: apply %s %s from manifests/%s: %w", o.GetKind(), o.GetName(), f, err)
			}
		}
	}
	return WaitForSelfRestraint(ctx, cfg)
}

// WaitForSelfRestraint waits until the API server refuses, with the
// policy's message, a write the policy forbids the webhook: a dry-run
// Role, in namespace default, that the webhook did not label as its own.
// The API server loads a new policy asynchronously; until then RBAC
// alone decides, and allows it.
func WaitForSelfRestraint(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(AsWebhook(cfg))
	if err != nil {
		return fmt.Errorf("wait for the self-restraint policy: %w", err)
	}
	probe := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "self-restraint-probe", Namespace: metav1.NamespaceDefault}}
	var last error
	for {
		_, err := cs.RbacV1().Roles(probe.Namespace).Create(ctx, probe.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case err == nil:
			last = errors.New("a Role not labelled as the webhook's was allowed: the policy is not in effect yet")
		case strings.Contains(err.Error(), SelfRestraintMessage):
			return nil
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the self-restraint policy: %w (last: %w)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WriteKubeconfig writes a kubeconfig file for cfg, impersonation included,
// for a child process such as `singleton-webhook serve`.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: cfg.Host,
		CertificateAuthority: cfg.CAFile, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{
		ClientCertificate: cfg.CertFile, ClientCertificateData: cfg.CertData,
		ClientKey: cfg.KeyFile, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
		Impersonate: cfg.Impersonate.UserName, ImpersonateGroups: cfg.Impersonate.Groups,
	}
	kc.Contexts["default"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "user"}
	kc.CurrentContext = "default"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// readObjects decodes the objects of a multi-document YAML file.
func readObjects(file string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("decode %s: %w", file, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}
