package ops

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"
)

// Output formats of status and check, as kubectl spells them.
const (
	OutputTable = ""
	OutputWide  = "wide"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// none is what a table shows for an absent value, as kubectl does.
const none = "<none>"

// WriteStatus writes list in format; withNamespace adds the NAMESPACE
// column (-A), and now is the time ages count from.
func WriteStatus(w io.Writer, list *StatusList, format string, withNamespace bool, now time.Time) error {
	switch format {
	case OutputJSON, OutputYAML:
		return writeObject(w, list, format)
	case OutputTable, OutputWide:
	default:
		return fmt.Errorf("unknown output format %q: want wide, json or yaml", format)
	}
	wide := format == OutputWide
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	head := []string{"NAME", "MODE", "ENFORCEMENT", "ADMITTED", "PODS", "ACTIVE", "WAITING"}
	if wide {
		head = append(head, "NODE", "LEASE", "EPOCH", "VALID-UNTIL", "NOTE")
	}
	if withNamespace {
		head = append([]string{"NAMESPACE"}, head...)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, s := range list.Items {
		row := statusRow(&s, now, wide)
		if withNamespace {
			row = append([]string{s.Namespace}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(tw, "(no singletons)")
	}
	return tw.Flush()
}

// statusRow is the table row of one singleton.
func statusRow(s *Singleton, now time.Time, wide bool) []string {
	admittedCol := "yes"
	if !s.Enforced {
		admittedCol = "NO"
	}
	pods := "?"
	if s.PodsAlive != nil {
		pods = strconv.Itoa(*s.PodsAlive)
	}
	row := []string{s.Name, s.Mode, s.Enforcement, admittedCol, pods, activeCell(s, now), waitingCell(s, now)}
	if !wide {
		return row
	}
	node, lease, epoch, until := none, none, none, none
	if s.Active != nil && s.Active.Node != "" {
		node = s.Active.Node
	}
	if l := s.Lease; l != nil {
		lease = l.Name
		if !l.Found {
			lease += " (missing)"
		}
		if l.Found {
			epoch = strconv.FormatInt(l.Epoch, 10)
		}
		if l.ValidUntil != nil {
			until = l.ValidUntil.Format(time.RFC3339)
		}
	}
	note := s.NotEnforced
	if note == "" {
		note = none
	}
	return append(row, node, lease, epoch, until, note)
}

// activeCell is the Pod that runs or leads, with the Lease's epoch and how
// long it stays valid in election mode.
func activeCell(s *Singleton, now time.Time) string {
	if s.Active == nil {
		if l := s.Lease; l != nil && l.Found && l.Holder != "" && l.ValidUntil != nil {
			return fmt.Sprintf("%s (no leader: lease expired %s ago)", none, age(now, *l.ValidUntil))
		}
		return none
	}
	if s.Lease == nil {
		return s.Active.Pod
	}
	return fmt.Sprintf("%s (epoch %d, valid %s)", s.Active.Pod, s.Lease.Epoch, ahead(now, *s.Lease.ValidUntil))
}

// waitingCell is the oldest gated Pod, what it waits for and for how long;
// "+N" counts the others.
func waitingCell(s *Singleton, now time.Time) string {
	if len(s.Waiting) == 0 {
		return none
	}
	w := s.Waiting[0]
	cell := w.Pod + " for "
	if w.WaitsFor == "" {
		cell += "the gate controller"
	} else {
		cell += w.WaitsFor + " (" + w.BlockerState + ")"
	}
	cell += " since " + age(now, w.Since)
	if n := len(s.Waiting) - 1; n > 0 {
		cell += fmt.Sprintf(" +%d", n)
	}
	return cell
}

// age is how long ago t was, as kubectl prints ages.
func age(now, t time.Time) string { return duration.HumanDuration(now.Sub(t)) }

// ahead is how long until t, or "0s" when it passed.
func ahead(now, t time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return duration.HumanDuration(d)
}

// writeObject writes v as indented JSON or as YAML.
func writeObject(w io.Writer, v any, format string) error {
	if format == OutputYAML {
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
