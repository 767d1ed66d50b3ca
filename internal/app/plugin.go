package app

import (
	"path/filepath"
	"strings"
)

// PluginName is the name under which kubectl finds the binary as a plugin:
// `kubectl singleton ...` runs `kubectl-singleton ...` from $PATH.
const PluginName = "kubectl-singleton"

// IsPluginName reports whether argv0, the name the binary was run as, is
// the kubectl plugin's (a symlink or a Krew install; ".exe" on Windows).
func IsPluginName(argv0 string) bool {
	return strings.TrimSuffix(filepath.Base(argv0), ".exe") == PluginName
}
