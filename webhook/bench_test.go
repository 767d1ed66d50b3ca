package webhook

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
)

// allowAll is the floor: the review is decoded and an allowed response
// encoded, and nothing else happens.
type allowAll struct{}

func (allowAll) Handle(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}

// BenchmarkAdmission compares the full Deployment handler with the floor any
// webhook pays, through the same HTTP handler the server mounts, on a
// realistic (~6 KB) and a large (~200 KB) Deployment.
func BenchmarkAdmission(b *testing.B) {
	sizes := []struct {
		name             string
		containers, envs int
	}{
		{"realistic", benchdata.RealisticContainers, benchdata.RealisticEnvs},
		{"large", benchdata.LargeContainers, benchdata.LargeEnvs},
	}
	logf.SetLogger(logr.Discard())
	for _, s := range sizes {
		body := benchdata.Review(benchdata.Deployment(s.containers, s.envs))
		handlers := map[string]admission.Handler{
			"floor":   allowAll{},
			"handler": &Deployments{},
		}
		for _, name := range []string{"floor", "handler"} {
			hook := NewHTTPHandler(ResourceDeployments, handlers[name], nil)
			b.Run(fmt.Sprintf("%s/%s", s.name, name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, DeploymentPath, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					hook.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("HTTP %d", rec.Code)
					}
				}
			})
		}
	}
}
