package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestPluginAnswersOnlyTheReadOnlyCommands(t *testing.T) {
	for name, tc := range map[string]struct {
		args   []string
		err    string
		stdout string
	}{
		"version":                       {[]string{"version"}, "", "dev\n"},
		"help lists status, check":      {[]string{"help"}, "", "kubectl singleton status [NAME]"},
		"serve is not a plugin command": {[]string{"serve"}, `unknown command "serve"`, ""},
		"no command":                    {nil, "no command given", ""},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runPlugin(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.stdout)
			}
		})
	}
}
