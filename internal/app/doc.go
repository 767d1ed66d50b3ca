// Package app is the wiring of the singleton-webhook binary: each command's
// flags, parsed and validated once, and the setup that runs it. The binary's
// main package only dispatches to it; the test harnesses call the same code.
package app
