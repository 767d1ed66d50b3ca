//go:build integration

package certmanager

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
)

// Renew asks cert-manager to re-issue a Certificate now, as `cmctl renew`
// does: it sets the Certificate's Issuing condition to True, which the
// issuing controllers act on exactly as on a renewal that falls due.
func Renew(ctx context.Context, c cmclient.Interface, namespace, name string) error {
	crt, err := c.CertmanagerV1().Certificates(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("renew certificate %s/%s: %w", namespace, name, err)
	}
	if apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{
		Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue,
	}) {
		return fmt.Errorf("renew certificate %s/%s: it is already being issued", namespace, name)
	}
	apiutil.SetCertificateCondition(crt, crt.Generation, cmapi.CertificateConditionIssuing,
		cmmeta.ConditionTrue, "ManuallyTriggered", "Certificate re-issuance manually triggered")
	if _, err := c.CertmanagerV1().Certificates(namespace).UpdateStatus(ctx, crt, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renew certificate %s/%s: %w", namespace, name, err)
	}
	return nil
}
