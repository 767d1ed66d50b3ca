package patches

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Expressions shared by the policies.
const (
	podLabelsExpr = `object.spec.template.?metadata.?labels.orValue({})`
	gatesExpr     = `object.spec.template.spec.?schedulingGates.orValue([])`
)

// Placeholders put into the Go rules' own messages and replaced by CEL, so
// the messages are generated, not copied.
const (
	phReplicas = 424242
	phStrategy = "@strategy@"
	phName     = "@name@"
	phProblems = "@problems@"
	phNode     = "@node@"
)

// nodeNameExpr is the pod template's spec.nodeName, empty when unset.
const nodeNameExpr = `object.spec.template.spec.?nodeName.orValue('')`

// nodeNameErrorExpr is checkNodeName's refusal of a pod template bound to
// a node, generated from the Go rule with a placeholder node.
func nodeNameErrorExpr() string {
	d := &appsv1.Deployment{}
	d.Spec.Template.Spec.NodeName = phNode
	err := checkNodeName(d)
	quoted := strconv.Quote(phNode)
	if err == nil || !strings.Contains(err.Error(), quoted) {
		panic(fmt.Sprintf("patches: checkNodeName no longer quotes the node as the policy does: %v", err))
	}
	return celTemplate(err.Error(), map[string]string{quoted: "strings.quote(" + nodeNameExpr + ")", phNode: nodeNameExpr})
}

// celTemplate turns text into a CEL string concatenation in which every
// placeholder key of subs is replaced by its CEL expression.
func celTemplate(text string, subs map[string]string) string {
	keys := make([]string, 0, len(subs))
	for k := range subs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for text != "" {
		at, key := len(text), ""
		for _, k := range keys {
			if i := strings.Index(text, k); i >= 0 && i < at {
				at, key = i, k
			}
		}
		if at > 0 {
			parts = append(parts, celString(text[:at]))
		}
		if key == "" {
			break
		}
		parts = append(parts, "("+subs[key]+")")
		text = text[at+len(key):]
	}
	return strings.Join(parts, " + ")
}

// problemsExpr lists what deny enforcement finds missing, in
// checkAsWritten's order and words: checkAsWritten itself is run on a
// Deployment made of placeholders.
func problemsExpr() string {
	replicas := int32(phReplicas)
	before := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: phName}}
	before.Spec.Replicas = &replicas
	before.Spec.Strategy.Type = phStrategy
	after := before.DeepCopy()
	if _, err := mutate(after, ModeReplicas, Policy{}); err != nil {
		panic(fmt.Sprintf("patches: mutate the placeholder Deployment: %v", err))
	}
	problems := checkAsWritten(before, after)
	if len(problems) != 4 {
		panic(fmt.Sprintf("patches: the placeholder Deployment has %d problems, the policy knows 4: %q", len(problems), problems))
	}
	subs := map[string]string{
		fmt.Sprint(phReplicas): "string(object.spec.replicas)",
		phStrategy:             "object.spec.?strategy.?type.orValue('') == '' ? 'RollingUpdate' : object.spec.strategy.type",
		phName:                 "variables.name",
	}
	conds := []string{
		"has(object.spec.replicas) && object.spec.replicas > 1",
		"object.spec.?strategy.?type.orValue('') != 'Recreate'",
		fmt.Sprintf("variables.podLabels[?%s].orValue('') != variables.name", celString(LabelDeployment)),
		fmt.Sprintf("!variables.gates.exists(g, g.name == %s)", celString(GateOneAtATime)),
	}
	terms := make([]string, len(conds))
	for i, c := range conds {
		terms[i] = fmt.Sprintf("(%s ? [%s] : [])", c, celTemplate(problems[i], subs))
	}
	return strings.Join(terms, " +\n")
}

// denyMessageExpr is DenyError's message for variables.problems.
func denyMessageExpr() string {
	msg := (&DenyError{Problems: []string{phProblems}}).Error()
	one := "(1 problem)"
	if !strings.Contains(msg, one) {
		panic("patches: DenyError no longer counts its problems as the policy does: " + msg)
	}
	return celTemplate(msg, map[string]string{
		one:        "'(' + string(size(variables.problems)) + ' problem' + (size(variables.problems) == 1 ? '' : 's') + ')'",
		phProblems: "variables.problems.join('; ')",
	})
}

// jsonPatch renders one JSONPatch operation.
func jsonPatch(op, path, value string) string {
	if value == "" {
		return fmt.Sprintf("JSONPatch{op: %s, path: %s}", celString(op), celString(path))
	}
	return fmt.Sprintf("JSONPatch{op: %s, path: %s, value: %s}", celString(op), celString(path), value)
}

// mutationExpr is applyReplicas, applyGate and applyPodLabel as one JSON
// Patch, or stripGate and stripPodLabel for a Deployment that stopped being
// a singleton.
func mutationExpr() string {
	annotation := func(key string) string { return "/metadata/annotations/" + jsonPointer(key) }
	origReplicas, origStrategy := celString(AnnotationOriginalReplicas), celString(AnnotationOriginalStrategy)
	strategyType := "object.spec.?strategy.?type.orValue('')"
	surge, unavailable := "object.spec.?strategy.?rollingUpdate.?maxSurge", "object.spec.?strategy.?rollingUpdate.?maxUnavailable"
	describe := fmt.Sprintf("(%[1]s == '' ? 'RollingUpdate' : %[1]s) + (%[2]s.hasValue() || %[3]s.hasValue() ? "+
		"'(' + ((%[2]s.hasValue() ? ['maxSurge=' + string(%[2]s.value())] : []) + (%[3]s.hasValue() ? ['maxUnavailable=' + string(%[3]s.value())] : [])).join(',') + ')' : '')",
		strategyType, surge, unavailable)
	labelPath := "/spec/template/metadata/labels"
	label := fmt.Sprintf("{%s: variables.name}", celString(LabelDeployment))
	gate := fmt.Sprintf("{'name': %s}", celString(GateOneAtATime))
	mutate := []string{
		fmt.Sprintf("(has(object.spec.replicas) && object.spec.replicas > 1 ? [%s, %s] : !(%s in variables.annotations) ? [%s] : [])",
			jsonPatch("add", annotation(AnnotationOriginalReplicas), "string(object.spec.replicas)"),
			jsonPatch("replace", "/spec/replicas", "1"),
			origReplicas,
			jsonPatch("add", annotation(AnnotationOriginalReplicas), "has(object.spec.replicas) ? string(object.spec.replicas) : '1'")),
		fmt.Sprintf("(%s != 'Recreate' ? [%s, %s] : !(%s in variables.annotations) ? [%s] : [])",
			strategyType,
			jsonPatch("add", annotation(AnnotationOriginalStrategy), describe),
			jsonPatch("add", "/spec/strategy", "{'type': 'Recreate'}"),
			origStrategy,
			jsonPatch("add", annotation(AnnotationOriginalStrategy), "'Recreate'")),
		fmt.Sprintf("(variables.hasGate ? [] : has(object.spec.template.spec.schedulingGates) ? [%s] : [%s])",
			jsonPatch("add", "/spec/template/spec/schedulingGates/-", gate),
			jsonPatch("add", "/spec/template/spec/schedulingGates", "["+gate+"]")),
		fmt.Sprintf("(variables.podLabels[?%s].orValue('') == variables.name && %s in variables.podLabels ? [] : "+
			"object.spec.template.?metadata.?labels.hasValue() ? [%s] : object.spec.template.?metadata.hasValue() ? [%s] : [%s])",
			celString(LabelDeployment), celString(LabelDeployment),
			jsonPatch("add", labelPath+"/"+jsonPointer(LabelDeployment), "variables.name"),
			jsonPatch("add", labelPath, label),
			jsonPatch("add", "/spec/template/metadata", "{'labels': "+label+"}")),
	}
	strip := []string{
		fmt.Sprintf("(!variables.hasGate ? [] : variables.gates.all(g, g.name == %s) ? [%s] : [%s])",
			celString(GateOneAtATime),
			jsonPatch("remove", "/spec/template/spec/schedulingGates", ""),
			jsonPatch("replace", "/spec/template/spec/schedulingGates", fmt.Sprintf("variables.gates.filter(g, g.name != %s).map(g, {'name': g.name})", celString(GateOneAtATime)))),
		fmt.Sprintf("(!(%[1]s in variables.podLabels) ? [] : size(variables.podLabels) == 1 ? [%[2]s] : [%[3]s])",
			celString(LabelDeployment),
			jsonPatch("remove", labelPath, ""),
			jsonPatch("remove", labelPath+"/"+jsonPointer(LabelDeployment), "")),
	}
	addLabel, stripLabel := modeLabelExprs()
	// label and strip never hold together, and mutate is label in mutate
	// enforcement: each is evaluated once.
	return "variables.label ?\n  (variables.mutateEnforcement ?\n    " + strings.Join(mutate, " +\n    ") + " :\n  []) +\n  " + addLabel +
		" :\nvariables.strip ?\n  " + strings.Join(append(strip, stripLabel), " +\n  ") + " :\n[]"
}

// modeLabelExprs are applyModeLabel, in both enforcements, and
// stripModeLabel for a Deployment that stopped being a singleton: the label
// is on the Deployment's own metadata, so the policy writes it also where
// deny enforcement rewrites nothing else.
func modeLabelExprs() (add, strip string) {
	labels := "object.metadata.?labels.orValue({})"
	path := "/metadata/labels"
	mode := celString(string(ModeReplicas))
	add = fmt.Sprintf("(%[1]s[?%[2]s].orValue('') == %[3]s ? [] : has(object.metadata.labels) ? [%[4]s] : [%[5]s])",
		labels, celString(LabelMode), mode,
		jsonPatch("add", path+"/"+jsonPointer(LabelMode), mode),
		jsonPatch("add", path, fmt.Sprintf("{%s: %s}", celString(LabelMode), mode)))
	strip = fmt.Sprintf("(!(%[2]s in %[1]s) ? [] : size(%[1]s) == 1 ? [%[3]s] : [%[4]s])",
		labels, celString(LabelMode),
		jsonPatch("remove", path, ""),
		jsonPatch("remove", path+"/"+jsonPointer(LabelMode), ""))
	return add, strip
}

// warningValidations fail, as warnings, where the mutation overrode the
// request: the policy cannot see the request before the mutation, so it
// reads the override from the original-* annotations the mutation wrote on
// this request (a CREATE, or an UPDATE that changed them). The messages are
// applyReplicas' own, generated from a placeholder Deployment.
func warningValidations() []admissionregistrationv1.Validation {
	replicas := int32(phReplicas)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: phName}}
	d.Spec.Replicas = &replicas
	d.Spec.Strategy.Type = phStrategy
	warnings, err := applyReplicas(d)
	if err != nil || len(warnings) != 2 {
		panic(fmt.Sprintf("patches: the placeholder Deployment gives %q, %v; the policy knows 2 warnings", warnings, err))
	}
	orig := func(key string) string { return fmt.Sprintf("variables.annotations[?%s].orValue('')", celString(key)) }
	changed := func(key string) string {
		return fmt.Sprintf("(request.operation == 'CREATE' || oldObject.metadata.?annotations[?%[1]s].orValue('') != %[2]s)", celString(key), orig(key))
	}
	ro, so := orig(AnnotationOriginalReplicas), orig(AnnotationOriginalStrategy)
	return []admissionregistrationv1.Validation{{
		Expression:        fmt.Sprintf("!(variables.mutate && %s.matches('^[0-9]+$') && int(%s) > 1 && %s)", ro, ro, changed(AnnotationOriginalReplicas)),
		MessageExpression: celTemplate(warnings[0], map[string]string{fmt.Sprint(phReplicas): ro}),
	}, {
		Expression:        fmt.Sprintf("!(variables.mutate && %s != '' && %s != 'Recreate' && %s)", so, so, changed(AnnotationOriginalStrategy)),
		MessageExpression: celTemplate(warnings[1], map[string]string{phStrategy: so}),
	}}
}
