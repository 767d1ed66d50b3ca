package sidecar

import (
	"strconv"
	"time"
)

// Names and places of the injected sidecar.
const (
	// ContainerName names the injected sidecar container.
	ContainerName = "singleton-elector"
	// VolumeName names the emptyDir shared by the sidecar and the app.
	VolumeName = "singleton-state"
	// StateDir is where VolumeName is mounted in every container.
	StateDir = "/var/run/singleton"
	// LeaderFileName is the file in StateDir that exists only while the
	// Pod's sidecar leads; it holds the same JSON as GET /leader.
	LeaderFileName = "leader"
	// LeaderFile is the leader file's path in every container.
	LeaderFile = StateDir + "/" + LeaderFileName
	// DefaultPort is where the sidecar serves GET /leader and GET /healthz,
	// on 127.0.0.1 only: the Pod's own containers reach it, nothing else.
	DefaultPort = 8910
	// EnvLeaderURL is the app's environment variable holding the URL of
	// GET /leader.
	EnvLeaderURL = "SINGLETON_LEADER_URL"
	// EnvLeaderFile is the app's environment variable holding LeaderFile.
	EnvLeaderFile = "SINGLETON_LEADER_FILE"
	// RoleLabel is the Pod label the webhook's controller sets to
	// RoleLeader or RoleStandby from the Lease; a leader Service selects
	// RoleLeader.
	RoleLabel = "singleton.dev/role"
	// RoleLeader is the RoleLabel value of the leading Pod.
	RoleLeader = "leader"
	// RoleStandby is the RoleLabel value of every other Pod.
	RoleStandby = "standby"
	// TokenVolumeName names the projected ServiceAccount token volume the
	// sidecar alone gets when the Pod opts out of the automatic token.
	TokenVolumeName = "singleton-elector-token"
	// TokenMountPath is where that volume is mounted in the sidecar: the
	// place client-go's in-cluster config reads its credentials from.
	TokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Defaults of the election timings, the values core Kubernetes components use.
const (
	// DefaultLeaseDuration is how long standbys wait after the last change
	// of the Lease record they saw before they take the Lease over.
	DefaultLeaseDuration = 15 * time.Second
	// DefaultRenewDeadline bounds how long the leader keeps its signals
	// after a renewal; see Timings.
	DefaultRenewDeadline = 10 * time.Second
	// DefaultRetryPeriod is the pause between two attempts to acquire or renew.
	DefaultRetryPeriod = 2 * time.Second
)

// LeaderURL is the URL of GET /leader for a sidecar serving on port.
func LeaderURL(port int) string {
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/leader"
}
