package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultModelMeetsTheBastionsRequirements(t *testing.T) {
	m, err := LoadDefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	if err := RequireRelations(m, BastionRequirements); err != nil {
		t.Fatalf("the default model fails the bastion's own requirements:\n%v", err)
	}
}

func TestRequireRelationsNamesWhatIsMissing(t *testing.T) {
	_, err := LoadBastionModel("model\n  schema 1.1\ntype user\n")
	if err == nil {
		t.Fatal("a model with only type user was accepted")
	}
	msg := err.Error()
	for _, want := range []string{"type domain is missing", "domain#admin", "type project is missing", "project#domain",
		"project#admin", "project#reviewer", "type resource is missing", "resource#act", "resource#view",
		"resource#project", "resource#requestable", "type group is missing", "group#member"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal does not name %q:\n%s", want, msg)
		}
	}
	var me *ModelError
	if !errors.As(err, &me) {
		t.Fatalf("not a *ModelError: %T", err)
	}
}

func TestRequireRelationsChecksWrittenSubjectTypes(t *testing.T) {
	src := strings.NewReplacer(
		"define admin: [user, group#member]\n    define reviewer: [user, group#member] or admin\n    define member: [user, group#member] or admin\n    define view: member",
		"define admin: [group#member]\n    define reviewer: [user, group#member] or admin\n    define member: [user, group#member] or admin\n    define view: member",
		"define requestable: view from project", "define other: view from project",
		"define act: [user, group#member] or admin or act from project", "define act: [group#member] or admin or act from project",
	).Replace(DefaultModel)
	m, err := LoadModel(src)
	if err != nil {
		t.Fatal(err)
	}
	err = RequireRelations(m, BastionRequirements)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{"domain#admin must accept user directly", "resource#act must accept user directly",
		"resource#requestable is missing"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal does not say %q:\n%s", want, msg)
		}
	}
	// Each problem names the line of the type or relation concerned.
	if !strings.Contains(msg, "model.fga:") || strings.Contains(msg, "model.fga: resource#requestable") {
		t.Errorf("problems do not name their line:\n%s", msg)
	}
}
