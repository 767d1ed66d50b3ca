package webhook

import (
	"context"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// Handlers are the admission handlers of the product, one per webhook entry.
type Handlers struct {
	// Deployments serves DeploymentPath.
	Deployments *Deployments
	// Scales serves ScalePath.
	Scales *Scales
	// Metrics records what the HTTP handlers answer; nil records nothing.
	Metrics *Metrics
}

// NewHandlers builds the handlers for a policy. parent may be nil when no
// cluster is reachable (offline review, standalone serve).
func NewHandlers(p patches.Policy, parent ParentLookup) Handlers {
	return Handlers{
		Deployments: &Deployments{Policy: p},
		Scales:      &Scales{Policy: p, Parent: parent},
	}
}

// Register mounts every handler on the server at its path.
func (h Handlers) Register(srv webhook.Server) {
	for path, hh := range h.routes() {
		srv.Register(path, hh)
	}
}

// routes returns the HTTP handler of every webhook path: the admission
// handlers behind the transport checks of HTTPHandler.
func (h Handlers) routes() map[string]http.Handler {
	return map[string]http.Handler{
		DeploymentPath: NewHTTPHandler(ResourceDeployments, h.Deployments, h.Metrics),
		ScalePath:      NewHTTPHandler(ResourceScale, h.Scales, h.Metrics),
	}
}

// pathFor returns the path of the handler the API server calls for req: the
// scale entry for the scale subresource, the Deployment entry otherwise.
func pathFor(req *admissionv1.AdmissionRequest) string {
	if req.SubResource == "scale" {
		return ScalePath
	}
	return DeploymentPath
}

// CachedParent looks a Deployment's metadata up in cache, the manager's
// cache, which then holds a metadata-only informer of the singleton
// Deployments (label patches.LabelMode, see controllers.CacheByObject). A
// Deployment the cache does not hold (an ordinary one, or a singleton
// created a moment ago) is read from api, the API server: one GET, so a
// scale right after a create is still checked.
func CachedParent(cache, api client.Reader) ParentLookup {
	return func(ctx context.Context, namespace, name string) (*metav1.PartialObjectMetadata, error) {
		key := client.ObjectKey{Namespace: namespace, Name: name}
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
		err := cache.Get(ctx, key, m)
		if apierrors.IsNotFound(err) {
			err = api.Get(ctx, key, m)
		}
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}
