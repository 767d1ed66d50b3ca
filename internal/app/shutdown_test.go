package app

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// holdRequest sends the headers of a review with Expect: 100-continue and
// waits for the server's 100 Continue, proving the handler is reading the
// body. It returns the connection and the body still to send.
func holdRequest(t *testing.T, s *served) (*tls.Conn, *bufio.Reader, string) {
	t.Helper()
	conn, err := tls.Dial("tcp", s.webhook, &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	body := serveReviewBody(t, "CREATE", singletonObject)
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"Expect: 100-continue\r\n\r\n", webhook.DeploymentPath, s.webhook, len(body))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("waiting for 100 Continue: %q %v", line, err)
	}
	if _, err := r.ReadString('\n'); err != nil { // the blank line ending the interim response
		t.Fatal(err)
	}
	return conn, r, body
}

func TestServeFinishesInFlightReviewsOnShutdown(t *testing.T) {
	s := startServed(t)
	conn, r, body := holdRequest(t, s)
	defer conn.Close()

	s.stop() // SIGTERM
	// New connections are refused once the listener is closed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.webhook, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the webhook port still accepts connections 30s after shutdown began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-s.done:
		close(s.done)
		t.Fatalf("serve returned (%v) with a review in flight", err)
	default:
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatalf("finish the body: %v", err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("read the answer of the in-flight review: %v", err)
	}
	defer resp.Body.Close()
	var ar admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil || resp.StatusCode != http.StatusOK ||
		ar.Response == nil || !ar.Response.Allowed || len(ar.Response.Patch) == 0 {
		t.Fatalf("in-flight review answered HTTP %d %+v (%v); want it mutated", resp.StatusCode, ar.Response, err)
	}
	select {
	case err := <-s.done:
		close(s.done)
		if err != nil {
			t.Errorf("serve returned %v after draining", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not return after its last review")
	}
}

func TestServeGivesUpAfterTheGracePeriod(t *testing.T) {
	s := startServed(t, "--graceful-shutdown-timeout=1s")
	conn, _, _ := holdRequest(t, s)
	defer conn.Close()
	s.stop()
	select {
	case err := <-s.done:
		close(s.done)
		if err == nil || err.Error() != "shut down: in-flight reviews did not finish within the grace period of 1s" {
			t.Errorf("serve returned %v, want the grace period named", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not return after its grace period")
	}
}
