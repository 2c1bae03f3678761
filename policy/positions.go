package policy

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/antlr4-go/antlr/v4"
	parser "github.com/openfga/language/pkg/go/gen"
)

// positions holds where things are declared in the DSL source. The proto
// model produced by the openfga transformer carries no positions, so the
// source is walked a second time with the same grammar to find them.
type positions struct {
	schemaLine int
	module     int // line of a "module" header; 0 if none
	extend     []int
	types      map[string][]int          // type -> lines of its declarations
	relations  map[string]map[string]int // type -> relation -> line
	conditions []conditionPos            // condition blocks and "with" uses
}

type conditionPos struct {
	line     int
	typ, rel string // set for a "with cond" use inside a relation
	name     string
	// decl marks a "condition NAME(...) { ... }" block; exprLine is the
	// line its expression starts on.
	decl     bool
	exprLine int
}

// posListener records positions while the parse tree is walked.
type posListener struct {
	*parser.BaseOpenFGAParserListener
	p       *positions
	curType string
	curRel  string
}

func line(t antlr.Token) int {
	if t == nil {
		return 0
	}
	return t.GetLine()
}

func (l *posListener) ExitModelHeader(ctx *parser.ModelHeaderContext) {
	if v := ctx.GetSchemaVersion(); v != nil {
		l.p.schemaLine = line(v)
	}
}

func (l *posListener) EnterModuleHeader(ctx *parser.ModuleHeaderContext) {
	l.p.module = line(ctx.GetStart())
}

func (l *posListener) EnterTypeDef(ctx *parser.TypeDefContext) {
	l.curType = ""
	if ctx.GetTypeName() == nil {
		return
	}
	l.curType = ctx.GetTypeName().GetText()
	ln := line(ctx.GetTypeName().GetStart())
	l.p.types[l.curType] = append(l.p.types[l.curType], ln)
	if ctx.EXTEND() != nil {
		l.p.extend = append(l.p.extend, ln)
	}
}

func (l *posListener) EnterRelationDeclaration(ctx *parser.RelationDeclarationContext) {
	l.curRel = ""
	if ctx.RelationName() == nil {
		return
	}
	l.curRel = ctx.RelationName().GetText()
	rels := l.p.relations[l.curType]
	if rels == nil {
		rels = map[string]int{}
		l.p.relations[l.curType] = rels
	}
	if _, dup := rels[l.curRel]; !dup {
		rels[l.curRel] = line(ctx.RelationName().GetStart())
	}
}

func (l *posListener) ExitRelationDefTypeRestriction(ctx *parser.RelationDefTypeRestrictionContext) {
	var name string
	var ln int
	switch {
	case ctx.ConditionName() != nil:
		name, ln = ctx.ConditionName().GetText(), line(ctx.ConditionName().GetStart())
	case ctx.DOLLAR_EXPRESSION() != nil:
		name, ln = ctx.DOLLAR_EXPRESSION().GetText(), line(ctx.DOLLAR_EXPRESSION().GetSymbol())
	case ctx.KEYWORD_WITH() != nil:
		ln = line(ctx.KEYWORD_WITH().GetSymbol())
	default:
		return
	}
	l.p.conditions = append(l.p.conditions, conditionPos{line: ln, typ: l.curType, rel: l.curRel, name: name})
}

func (l *posListener) EnterCondition(ctx *parser.ConditionContext) {
	cp := conditionPos{line: line(ctx.GetStart()), decl: true}
	if ctx.ConditionName() != nil {
		cp.name = ctx.ConditionName().GetText()
		cp.line = line(ctx.ConditionName().GetStart())
	}
	cp.exprLine = cp.line
	if x := ctx.ConditionExpression(); x != nil {
		cp.exprLine = line(x.GetStart())
	}
	l.p.conditions = append(l.p.conditions, cp)
}

// cleanDSL applies the same preprocessing as the openfga transformer
// (comments removed, line count kept) so that our walk sees the tokens, and
// line numbers, that the transformer saw.
func cleanDSL(data string) string {
	lines := strings.Split(data, "\n")
	for i, ln := range lines {
		trimmed := strings.TrimLeft(ln, " ")
		switch {
		case trimmed == "":
			lines[i] = ""
		case trimmed[0] == '#':
			lines[i] = ""
		default:
			lines[i] = strings.TrimRight(strings.Split(ln, " #")[0], " ")
		}
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// syntaxErr collects syntax errors from our own walk, should it find any
// the transformer did not report.
type syntaxErr struct {
	*antlr.DefaultErrorListener
	errs []*ModelError
}

func (s *syntaxErr) SyntaxError(_ antlr.Recognizer, _ interface{}, ln, col int, msg string, _ antlr.RecognitionException) {
	s.errs = append(s.errs, &ModelError{Line: ln, Msg: "syntax error at column " + strconv.Itoa(col+1) + ": " + msg})
}

// scanPositions parses the DSL and returns where things are declared.
func scanPositions(dsl string) (*positions, []*ModelError) {
	p := &positions{types: map[string][]int{}, relations: map[string]map[string]int{}}
	se := &syntaxErr{DefaultErrorListener: antlr.NewDefaultErrorListener()}
	lexer := parser.NewOpenFGALexer(antlr.NewInputStream(cleanDSL(dsl)))
	lexer.RemoveErrorListeners()
	lexer.AddErrorListener(se)
	ps := parser.NewOpenFGAParser(antlr.NewCommonTokenStream(lexer, antlr.TokenDefaultChannel))
	ps.RemoveErrorListeners()
	ps.AddErrorListener(se)
	antlr.ParseTreeWalkerDefault.Walk(&posListener{p: p}, ps.Main())
	return p, se.errs
}

// syntaxRE matches one error of the transformer, which counts lines from 0
// and columns from 0: "syntax error at line=6, column=25: msg".
var syntaxRE = regexp.MustCompile(`(?s)^syntax error at line=(\d+), column=(\d+): (.*)$`)

// syntaxError turns one transformer error into a ModelError with a
// 1-based line.
func syntaxError(msg string) *ModelError {
	m := syntaxRE.FindStringSubmatch(msg)
	if m == nil {
		return &ModelError{Msg: msg}
	}
	ln, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	return &ModelError{Line: ln + 1, Msg: "syntax error at column " + strconv.Itoa(col+1) + ": " + m[3]}
}
