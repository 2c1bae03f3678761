package policy

import (
	"fmt"
	"strings"
)

// Requirement is a type, or a relation of a type, that code outside the
// model relies on. A model without it still loads (LoadModel knows nothing
// of the bastion), but [RequireRelations] refuses it.
type Requirement struct {
	Type string
	// Relation is "" when only the type must exist.
	Relation string
	// Subjects are the subject types the code writes tuples with directly
	// on Type#Relation: the relation must accept each of them.
	Subjects []TypeRef
	// Why says what breaks without it; refusals quote it.
	Why string
}

func (r Requirement) String() string {
	if r.Relation == "" {
		return "type " + r.Type
	}
	return r.Type + "#" + r.Relation
}

var (
	refUser        = TypeRef{Type: "user"}
	refGroupMember = TypeRef{Type: "group", Relation: "member"}
)

// BastionRequirements is every type and relation the bastion's code checks
// or writes tuples on, and why. It is the one list: `model load`,
// `model rollback`, the start-up check of the stored model and the
// break-glass restore all check against it, so that no model can lock the
// admins out or make every session check fail. Add to it whenever code
// starts to Check, ListObjects or write a new type or relation.
var BastionRequirements = []Requirement{
	{Type: "user", Why: "every caller is the subject user:NAME"},
	{Type: "group", Relation: "member", Subjects: []TypeRef{refUser, refGroupMember},
		Why: "`groups add-member` writes group:G#member@user:U and @group:H#member"},
	{Type: "domain", Relation: "admin", Subjects: []TypeRef{refUser},
		Why: "domain:D#admin is who administers the bastion (every admin command checks it); --admin, " +
			"the config's admins and break-glass grant-admin write domain:D#admin@user:U"},
	{Type: "project", Relation: "domain", Subjects: []TypeRef{{Type: "domain"}},
		Why: "`resources add` and the config write project:P#domain@domain:D, the tenancy edge that lets domain admins reach projects"},
	{Type: "project", Relation: "admin",
		Why: "`resources add --project P` by a project admin checks admin on project:P"},
	{Type: "project", Relation: "reviewer",
		Why: "reviewers are granted per project (project:P#reviewer@user:U) to approve access requests there"},
	{Type: "resource", Relation: "project", Subjects: []TypeRef{{Type: "project"}},
		Why: "`resources add` and the config write resource:R#project@project:P, which places every Resource in its project"},
	{Type: "resource", Relation: "admin",
		Why: "`resources rm` and `tuples add/rm` on a Resource check admin on it"},
	{Type: "resource", Relation: "act", Subjects: []TypeRef{refUser},
		Why: "every session (forward, -J, shell, sftp, kube) checks act on resource:R, and live sessions are re-checked; " +
			"an approved access request writes resource:R#act@user:U"},
	{Type: "resource", Relation: "view",
		Why: "`resources list/show`, the TUI, sftp and `request search` list what the caller may view"},
	{Type: "resource", Relation: "reviewer",
		Why: "approving, denying and listing access requests check reviewer on each Resource"},
	{Type: "resource", Relation: "requestable",
		Why: "`request create` and `request search` check requestable on the Resource"},
}

// RequireRelations checks that m has every required type and relation,
// and that relations the code writes tuples on accept the subject types it
// writes. Problems are *ModelErrors (on the line of the type when it
// exists), joined, each naming what is missing and why it is needed; a
// missing type is reported once, with all the relations wanted on it.
func RequireRelations(m *Model, reqs []Requirement) error {
	var errs []*ModelError
	missingType := map[string][]Requirement{}
	var typeOrder []string
	for _, r := range reqs {
		td := m.types[r.Type]
		if td == nil {
			if _, seen := missingType[r.Type]; !seen {
				typeOrder = append(typeOrder, r.Type)
			}
			missingType[r.Type] = append(missingType[r.Type], r)
			continue
		}
		if r.Relation == "" {
			continue
		}
		rd := td.relations[r.Relation]
		if rd == nil {
			errs = append(errs, &ModelError{Line: td.line, Msg: fmt.Sprintf("%s is missing, and the bastion needs it: %s", r, r.Why)})
			continue
		}
		for _, s := range r.Subjects {
			if !rd.allows(refKey{typ: s.Type, rel: s.Relation, wildcard: s.Wildcard}) {
				errs = append(errs, &ModelError{Line: rd.line, Msg: fmt.Sprintf("%s must accept %s directly, as in [%s], and the bastion needs it: %s",
					r, s, s, r.Why)})
			}
		}
	}
	for _, typ := range typeOrder {
		// One line per missing type, naming the relations wanted on it;
		// the reasons are for the subtler problems above.
		var rels []string
		why := ""
		for _, r := range missingType[typ] {
			if r.Relation != "" {
				rels = append(rels, typ+"#"+r.Relation)
			} else {
				why = r.Why
			}
		}
		msg := "type " + typ + " is missing"
		if len(rels) > 0 {
			msg += ": the bastion checks or writes " + strings.Join(rels, ", ")
		} else {
			msg += ": " + why
		}
		errs = append(errs, &ModelError{Msg: msg})
	}
	if len(errs) == 0 {
		return nil
	}
	return withFile("model.fga", errs)
}

// LoadBastionModel loads a model and checks it against
// BastionRequirements: what `model load` accepts.
func LoadBastionModel(dsl string) (*Model, error) {
	m, err := LoadModel(dsl)
	if err != nil {
		return nil, err
	}
	if err := RequireRelations(m, BastionRequirements); err != nil {
		return nil, err
	}
	return m, nil
}
