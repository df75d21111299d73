package escalation

// Ladder files.
//
// A file holds one or more YAML documents (separated by ---), each one ladder; docs/ladders.md
// describes every field. Parse reads them strictly, the way risk.ParsePolicy reads a policy: unknown
// keys, bad values and steps that could never reach anybody are errors, all reported at once with
// their positions, so a broken ladder is found by `ony ladder validate` or at start, never by a
// handoff that nobody hears about.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/internal/yamlnode"
)

// DefaultOrder is the Order of a ladder that does not set one.
const DefaultOrder = 100

// Limits of the format. They keep a ladder something a person can read and an engine can run: a
// ladder longer than these is almost certainly a mistake.
const (
	maxFileBytes   = 256 << 10 // the same bound as a ladder put through the API
	maxNodes       = 100_000   // YAML nodes visited, following aliases (alias bombs)
	maxErrors      = 200       // mistakes reported per file
	maxSteps       = 20
	maxRepeat      = 10
	maxOrder       = 1000
	maxWait        = 24 * time.Hour
	maxTargets     = 100
	maxRedialTimes = 5
	minRedialGap   = 10 * time.Second
	maxRedialGap   = 30 * time.Minute
	maxGlobBytes   = 256
	minCycle       = time.Second
)

// RiskLevels are the risk levels a ladder can name, lowest first.
var riskLevels = []string{"low", "medium", "high", "critical"}

var (
	ladderNameRE   = lazyregexp.New(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	labelKeyRE     = lazyregexp.New(`^[a-z0-9][a-z0-9_./-]{0,62}$`)
	providerNameRE = lazyregexp.New(`^[a-z0-9][a-z0-9_-]{0,31}$`)
)

const nameRule = "1 to 63 lower-case letters, digits, '_' or '-', starting with a letter or digit"

// Error is one mistake in a ladder file; Path names the offending value, e.g. steps[1].targets[0].
// Its JSON is what the API returns for a ladder it refuses.
type Error = yamlnode.Diagnostic

// Errors is every mistake found, in file order, so that they can all be fixed in one pass.
type Errors = yamlnode.Diagnostics

// Parse reads one or more YAML documents (separated by ---), each one ladder, whose steps may name
// the given kinds of channel. filename labels positions and makes the Origin "file:"+filename. On any mistake it returns a *Errors listing all of
// them; ladders it returns have Order 100, quiet_hours respect and end expire unless they say
// otherwise, and Version 0.
func Parse(data []byte, filename string, kinds *channel.Kinds) ([]*Ladder, error) {
	docs, errs := parseFile(data, filename, kinds)
	errs = append(errs, crossCheck(docs)...)
	if len(errs) > 0 {
		yamlnode.Sort(errs, nil)
		return nil, &Errors{List: errs}
	}
	return ladders(docs), nil
}

// LoadDir parses every *.yaml and *.yml file in dir, by name, and checks that ladder names are
// unique and at most one ladder is default across all of them. Hidden files (editor backups such as
// .#x.yaml) are skipped. An empty directory gives no ladders, which leaves Builtin in force.
func LoadDir(dir string, kinds *channel.Kinds) ([]*Ladder, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("escalation: ladders: %w", err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		if ext := filepath.Ext(name); ext == ".yaml" || ext == ".yml" {
			files = append(files, filepath.Join(dir, name))
		}
	}
	sort.Strings(files)
	return LoadFiles(files, kinds)
}

// LoadFiles parses the files as one collection, as LoadDir does: ladder names must be unique and at
// most one ladder default across all of them. Errors come in the order of the files.
func LoadFiles(files []string, kinds *channel.Kinds) ([]*Ladder, error) {
	var docs []parsedLadder
	var errs []Error
	order := map[string]int{}
	for i, f := range files {
		order[f] = i
		data, err := readLadderFile(f)
		if err != nil {
			errs = append(errs, Error{File: f, Msg: err.Error()})
			continue
		}
		d, e := parseFile(data, f, kinds)
		docs, errs = append(docs, d...), append(errs, e...)
	}
	errs = append(errs, crossCheck(docs)...)
	if len(errs) > 0 {
		yamlnode.Sort(errs, order)
		return nil, &Errors{List: errs}
	}
	return ladders(docs), nil
}

// readLadderFile reads at most one byte more than a ladder file may hold, so that a wrong path such
// as /dev/zero fails fast and Parse reports the size.
func readLadderFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the error names the file already
		}
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	return b, nil
}

// Builtin is the ladder used when nothing else matches and no ladder is default: the console inbox
// of everyone who can decide, and the chat channels given (those configured), until the handoff's
// own timeout. People not linked on a chat channel are reached in the console alone.
func Builtin(chat ...string) *Ladder {
	return &Ladder{
		Name:    "builtin",
		Origin:  "builtin",
		Order:   DefaultOrder,
		Default: true,
		Steps: []Step{{
			Channels: append([]string{channel.ConsoleKind.Name}, chat...),
			Targets:  []Target{{Kind: TargetRole, Value: "admin"}, {Kind: TargetRole, Value: "member"}},
			Quiet:    QuietRespect,
		}},
		End: EndWait,
	}
}

// TeamTargets lists the shared destinations of one kind the ladder posts to (the names of webhook:
// targets, say), sorted and without repeats, so that a ladder naming one that is not configured can
// be refused.
func (l *Ladder) TeamTargets(kind string) []string {
	var names []string
	for _, s := range l.Steps {
		for _, t := range s.Targets {
			if string(t.Kind) == kind && !slices.Contains(names, t.Value) {
				names = append(names, t.Value)
			}
		}
	}
	slices.Sort(names)
	return names
}

// parsedLadder is one document of a file with what the checks across documents and files need.
type parsedLadder struct {
	ladder   *Ladder
	file     string
	nameNode *yaml.Node // nil when the name is missing or bad
	defNode  *yaml.Node // the value of default: true
	ok       bool
}

func ladders(docs []parsedLadder) []*Ladder {
	out := make([]*Ladder, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.ladder)
	}
	return out
}

// crossCheck reports a name defined twice and a second default, each at the later occurrence.
func crossCheck(docs []parsedLadder) []Error {
	var errs []Error
	type where struct {
		file string
		line int
	}
	names := map[string]where{}
	var def *parsedLadder
	for i := range docs {
		d := &docs[i]
		if d.nameNode != nil {
			name := d.ladder.Name
			if first, dup := names[name]; dup {
				errs = append(errs, Error{File: d.file, Line: d.nameNode.Line, Column: d.nameNode.Column, Path: "name",
					Msg: fmt.Sprintf("ladder %q is already defined at %s:%d", name, first.file, first.line)})
			} else {
				names[name] = where{d.file, d.nameNode.Line}
			}
		}
		if d.defNode != nil {
			if def != nil {
				errs = append(errs, Error{File: d.file, Line: d.defNode.Line, Column: d.defNode.Column, Path: "default",
					Msg: fmt.Sprintf("only one ladder may be default, and %q at %s:%d already is", def.ladder.Name, def.file, def.defNode.Line)})
			} else {
				def = d
			}
		}
	}
	return errs
}

type ladderParser struct {
	yamlnode.Walker
	kinds *channel.Kinds
	file  string
	errs  []Error
}

// parseFile parses every document of one file. Documents that fail still come back (with ok false)
// when their name could be read, so that a name defined twice is reported even in a broken file.
func parseFile(data []byte, filename string, kinds *channel.Kinds) (docs []parsedLadder, errs []Error) {
	p := &ladderParser{file: filename, kinds: kinds}
	p.Walker = yamlnode.Walker{Max: maxNodes, Input: "the file", Add: p.add}
	if len(data) > maxFileBytes {
		p.errs = append(p.errs, Error{File: filename,
			Msg: fmt.Sprintf("the file is larger than %d KiB; a ladder file must be smaller (split it, or shorten it)", maxFileBytes>>10)})
		return nil, p.errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	seen := 0
	for !p.Halted() {
		var doc yaml.Node
		err := p.decode(dec, &doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.syntaxError(err, data)
			break
		}
		root := &doc
		if root.Kind == yaml.DocumentNode {
			if len(root.Content) == 0 {
				continue
			}
			root = root.Content[0]
		}
		root = p.Resolve(root)
		if yamlnode.IsNull(root) {
			continue // an empty document, e.g. after a trailing ---
		}
		seen++
		d := p.ladder(root)
		d.file = filename
		docs = append(docs, d)
	}
	if seen == 0 && len(p.errs) == 0 {
		p.errs = append(p.errs, Error{File: filename, Line: 1, Column: 1,
			Msg: "no ladder in the file; a ladder needs at least a name and steps"})
	}
	var keep []parsedLadder
	for _, d := range docs {
		if d.ok || d.nameNode != nil {
			keep = append(keep, d)
		}
	}
	return keep, p.errs
}

// decode turns a panic of the YAML library on hostile input into an error: a ladder can come from
// an API body, and no body may take the server down.
func (p *ladderParser) decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

func (p *ladderParser) add(n *yaml.Node, path, msg string) {
	if p.Halted() {
		return
	}
	if len(p.errs) == maxErrors {
		// A file this wrong is the wrong file; a list of thousands would bury the first mistakes.
		p.Halt()
		msg = fmt.Sprintf("too many mistakes (%d); stopping here", maxErrors)
	}
	p.errs = append(p.errs, yamlnode.At(p.file, n, path, msg))
}

func (p *ladderParser) addf(n *yaml.Node, path, format string, args ...any) {
	p.add(n, path, fmt.Sprintf(format, args...))
}

// syntaxError bypasses the cap on mistakes: the file is read no further after it.
func (p *ladderParser) syntaxError(err error, data []byte) {
	line, col, msg := yamlnode.SyntaxError(err, data)
	p.errs = append(p.errs, Error{File: p.file, Line: line, Column: col, Msg: msg})
}

var ladderKeys = []string{"name", "order", "default", "match", "steps", "repeat", "end"}

// ladder parses one document. Fields are checked where they are written; the checks that span
// fields come after, each at the field that breaks them.
func (p *ladderParser) ladder(n *yaml.Node) parsedLadder {
	before := len(p.errs)
	l := &Ladder{Order: DefaultOrder, End: EndExpire, Origin: "file:" + p.file}
	d := parsedLadder{ladder: l}
	if n.Kind != yaml.MappingNode {
		p.addf(n, "", "a ladder must be a mapping (name, steps, ...), got %s", yamlnode.Describe(n))
		return d
	}
	keys := map[string]*yaml.Node{}
	var rungs []stepNodes
	var matchNode, repeatNode, endNode *yaml.Node
	endBad := false
	p.Mapping(n, "", ladderKeys, func(key string, k, v *yaml.Node) {
		keys[key] = k
		switch key {
		case "name":
			if s, ok := p.Str(v, key); ok {
				vn := p.Resolve(v)
				switch {
				case !ladderNameRE.MatchString(s):
					p.addf(vn, key, "ladder name %q must be %s", s, nameRule)
				case s == "builtin":
					p.addf(vn, key, `"builtin" is the name of the ladder Ony uses when no other matches; pick another`)
				default:
					l.Name, d.nameNode = s, vn
				}
			}
		case "order":
			l.Order, _ = p.integer(v, key, 0, maxOrder)
		case "default":
			if b, ok := p.boolean(v, key); ok && b {
				l.Default, d.defNode = true, p.Resolve(v)
			}
		case "match":
			matchNode = k
			l.Match = p.match(v)
		case "steps":
			items := p.Seq(v, key)
			if len(items) > maxSteps {
				p.addf(p.Resolve(v), key, "%d steps; a ladder has at most %d", len(items), maxSteps)
				items = items[:maxSteps]
			}
			if p.emptyList(v) {
				p.addf(p.Resolve(v), key, "no steps; a ladder needs at least one")
			}
			names := map[string]int{}
			for i, item := range items {
				st, sn := p.step(item, fmt.Sprintf("steps[%d]", i))
				if st.Name != "" {
					if first, dup := names[st.Name]; dup {
						p.addf(sn.name, fmt.Sprintf("steps[%d].name", i), "step name %q is already used on line %d", st.Name, first)
					} else {
						names[st.Name] = sn.name.Line
					}
				}
				l.Steps = append(l.Steps, st)
				rungs = append(rungs, sn)
			}
		case "repeat":
			repeatNode = p.Resolve(v)
			l.Repeat, _ = p.integer(v, key, 0, maxRepeat)
		case "end":
			endNode = p.Resolve(v)
			s, ok := p.Str(v, key)
			switch {
			case !ok:
				endBad = true
			case End(s) == EndExpire || End(s) == EndWait:
				l.End = End(s)
			default:
				// Unknown, so the checks of the last step below would only guess.
				endBad = true
				p.addf(endNode, key, "end %q must be expire (the handoff expires when the ladder runs out) or wait (it stays pending until its own timeout)%s",
					s, yamlnode.Suggest(s, []string{string(EndExpire), string(EndWait)}))
			}
		}
	})
	if keys["name"] == nil {
		p.addf(n, "name", "missing; every ladder needs a name")
	}
	if keys["steps"] == nil {
		p.addf(n, "steps", "missing; a ladder needs at least one step")
	}

	// Checks across fields.
	if l.Default && matchNode != nil && !matchEmpty(l.Match) {
		p.addf(matchNode, "match", "a default ladder is used whenever no other ladder matches, so its match would be ignored; remove it or the default")
	}
	stepsOK := len(rungs) > 0 && !slices.ContainsFunc(rungs, func(sn stepNodes) bool { return !sn.ok })
	if l.Repeat > 0 && stepsOK && l.Cycle() < minCycle {
		p.addf(repeatNode, "repeat", "the steps wait %s in all, so repeating them would notify everyone again at once; give the steps waits of at least %s in total",
			FormatDuration(l.Cycle()), FormatDuration(minCycle))
	}
	if l.End == EndExpire && !endBad && len(rungs) > 0 {
		i := len(rungs) - 1
		last, sn := l.Steps[i], rungs[i]
		where := "end is expire"
		if endNode == nil {
			where = "end defaults to expire"
		}
		if sn.ok && last.Wait == 0 {
			at, path := sn.node, fmt.Sprintf("steps[%d]", i)
			if sn.wait != nil {
				at, path = sn.wait, path+".wait"
			}
			p.addf(at, path, "the last step waits 0s and %s, so the handoff would expire the moment this step is sent; give it a wait, or set end: wait", where)
		} else if sn.ok && last.Redial.Times > 0 && time.Duration(last.Redial.Times)*last.Redial.Gap >= last.Wait {
			p.addf(sn.redial, fmt.Sprintf("steps[%d].redial", i), "the last redial comes %s after the call but the ladder ends (%s) %s after it; raise this step's wait above %s, or set end: wait",
				FormatDuration(time.Duration(last.Redial.Times)*last.Redial.Gap), where, FormatDuration(last.Wait), FormatDuration(time.Duration(last.Redial.Times)*last.Redial.Gap))
		}
	}
	d.ok = len(p.errs) == before && !p.Halted()
	return d
}

func matchEmpty(m Match) bool {
	return len(m.Risk) == 0 && len(m.Actions) == 0 && len(m.Labels) == 0
}

// match parses match:. An empty list is an error rather than "anything": leaving the key out says
// that, and an empty list is more likely a half-finished edit.
func (p *ladderParser) match(n *yaml.Node) Match {
	var m Match
	p.Mapping(n, "match", []string{"risk", "actions", "labels"}, func(key string, _, v *yaml.Node) {
		fp := "match." + key
		switch key {
		case "risk":
			items, nodes := p.strOrList(v, fp)
			for i, s := range items {
				ip := fmt.Sprintf("%s[%d]", fp, i)
				s = strings.ToLower(strings.TrimSpace(s))
				switch {
				case !slices.Contains(riskLevels, s):
					p.addf(nodes[i], ip, "unknown risk level %q; use low, medium, high or critical%s", items[i], yamlnode.Suggest(s, riskLevels))
				case slices.Contains(m.Risk, s):
					p.addf(nodes[i], ip, "risk level %q is listed twice", s)
				default:
					m.Risk = append(m.Risk, s)
				}
			}
			if p.emptyList(v) {
				p.addf(p.Resolve(v), fp, "empty list; leave match.risk out to match every risk level")
			}
		case "actions":
			items, nodes := p.strOrList(v, fp)
			for i, g := range items {
				ip := fmt.Sprintf("%s[%d]", fp, i)
				if msg := actionGlobProblem(g); msg != "" {
					p.addf(nodes[i], ip, "%s", msg)
				} else if slices.Contains(m.Actions, g) {
					p.addf(nodes[i], ip, "action glob %q is listed twice", g)
				} else {
					m.Actions = append(m.Actions, g)
				}
			}
			if p.emptyList(v) {
				p.addf(p.Resolve(v), fp, `empty list; leave match.actions out to match every action`)
			}
		case "labels":
			vn := p.Resolve(v)
			count := 0
			p.Entries(v, fp, nil, func(k string, lp string, kn, vn *yaml.Node) {
				count++
				val, ok := p.Str(vn, lp)
				switch {
				case !labelKeyRE.MatchString(k):
					p.addf(kn, lp, "label key %q can never match: label keys are 1 to 63 lower-case letters, digits, '_', '.', '/' or '-', starting with a letter or digit", k)
				case !ok:
				case val == "":
					p.addf(p.Resolve(vn), lp, `empty value; use "*" to match any value of the label`)
				case len(val) > maxGlobBytes:
					p.addf(p.Resolve(vn), lp, "the glob is longer than %d bytes", maxGlobBytes)
				default:
					if err := checkGlob(val); err != nil {
						p.addf(p.Resolve(vn), lp, "bad glob %q: %v", val, err)
						return
					}
					if m.Labels == nil {
						m.Labels = map[string]string{}
					}
					m.Labels[k] = val
				}
			})
			if count == 0 && !p.Halted() && (yamlnode.IsNull(vn) || vn.Kind == yaml.MappingNode && len(vn.Content) == 0) {
				p.addf(vn, fp, "empty mapping; leave match.labels out to match any labels")
			}
		}
	})
	return m
}

// emptyList reports whether n is null or a list with no items: a key written but left empty, more
// likely a half-finished edit than a decision.
func (p *ladderParser) emptyList(n *yaml.Node) bool {
	n = p.Resolve(n)
	return !p.Halted() && (yamlnode.IsNull(n) || n.Kind == yaml.SequenceNode && len(n.Content) == 0)
}

// checkGlob checks a glob's syntax. path.Match reports ErrBadPattern only once it reaches the broken
// part, and matching the empty string makes it read the whole pattern.
func checkGlob(glob string) error {
	_, err := path.Match(glob, "")
	return err
}

// actionGlobProblem says what is wrong with an action glob, or "". Actions are lower-case (handoff
// validates them), so an upper-case letter could only ever fail to match, silently.
func actionGlobProblem(g string) string {
	switch {
	case g == "":
		return `empty action glob; use "*" for every action`
	case len(g) > maxGlobBytes:
		return fmt.Sprintf("the glob is longer than %d bytes", maxGlobBytes)
	case strings.ToLower(g) != g:
		return fmt.Sprintf("actions are lower-case, so %q could never match; write %q", g, strings.ToLower(g))
	case strings.ContainsAny(g, " \t\n"):
		return fmt.Sprintf("action glob %q contains a space, so it could never match", g)
	}
	if err := checkGlob(g); err != nil {
		return fmt.Sprintf("bad glob %q: %v", g, err)
	}
	return ""
}

// channelPath is the path of channel c in a step's channels, read whole.
func channelPath(prefix, c string, channels []string) string {
	return fmt.Sprintf("%s[%d]", prefix, slices.Index(channels, c))
}

// stepNodes keeps the nodes of a step that checks across fields point at.
type stepNodes struct {
	node, name, wait, redial *yaml.Node
	ok                       bool
}

var stepKeys = []string{"name", "channels", "targets", "wait", "quiet_hours", "override_quiet_hours_at", "redial", "providers"}

// stepParse is one step being read: the targets, redial and providers are checked against the
// channels wherever they are written, so the keys are gathered first and read in a fixed order.
type stepParse struct {
	path      string
	st        Step
	sn        stepNodes
	keys      map[string]*yaml.Node
	vals      map[string]*yaml.Node
	channelAt map[string]*yaml.Node // where each channel was written
	targets   []placedTarget
	// channelsKnown and targetsKnown say the list was read whole, without a mistake: the checks
	// between them would only guess otherwise.
	channelsKnown, targetsKnown bool
}

type placedTarget struct {
	t    Target
	node *yaml.Node
	path string
}

// step parses one rung.
func (p *ladderParser) step(n *yaml.Node, path string) (Step, stepNodes) {
	before := len(p.errs)
	sp := &stepParse{path: path, st: Step{Quiet: QuietRespect}, sn: stepNodes{node: p.Resolve(n)},
		keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}, channelAt: map[string]*yaml.Node{}}
	if yamlnode.IsNull(sp.sn.node) {
		p.addf(sp.sn.node, path, "expected a step (a mapping with channels and targets), got null")
		return sp.st, sp.sn
	}
	if !p.Mapping(n, path, stepKeys, func(key string, k, v *yaml.Node) { sp.keys[key], sp.vals[key] = k, v }) {
		return sp.st, sp.sn
	}
	if v := sp.vals["name"]; v != nil {
		if s, ok := p.Str(v, path+".name"); ok {
			if !ladderNameRE.MatchString(s) {
				p.addf(p.Resolve(v), path+".name", "step name %q must be %s", s, nameRule)
			} else {
				sp.st.Name, sp.sn.name = s, p.Resolve(v)
			}
		}
	}
	p.stepChannels(sp)
	p.stepTargets(sp)
	p.stepReach(sp)
	if v := sp.vals["wait"]; v != nil {
		sp.sn.wait = p.Resolve(v)
		sp.st.Wait, _ = p.duration(v, path+".wait", 0, maxWait)
	}
	p.stepQuiet(sp)
	if v := sp.vals["redial"]; v != nil {
		fp := path + ".redial"
		sp.sn.redial = sp.keys["redial"]
		if redials := p.kinds.Where(func(k channel.Kind) bool { return k.Redials }); sp.channelsKnown &&
			!slices.ContainsFunc(redials, func(k string) bool { return sp.channelAt[k] != nil }) {
			p.addf(sp.keys["redial"], fp, "redial retries %ss, and the step has no %s channel", strings.Join(redials, "s or "), strings.Join(redials, " or "))
		}
		sp.st.Redial = p.redial(v, fp)
	}
	if v := sp.vals["providers"]; v != nil {
		sp.st.Providers = p.providers(v, path+".providers", sp.channelAt, sp.channelsKnown)
	}
	sp.sn.ok = len(p.errs) == before
	return sp.st, sp.sn
}

// stepChannels reads channels: registered kinds, each once.
func (p *ladderParser) stepChannels(sp *stepParse) {
	before := len(p.errs)
	names := p.kinds.Names()
	v := sp.vals["channels"]
	fp := sp.path + ".channels"
	if v == nil {
		p.addf(sp.sn.node, fp, "missing; a step needs at least one of %s", strings.Join(names, ", "))
		return
	}
	items, nodes := p.StrList(v, fp)
	for i, c := range items {
		ip := fmt.Sprintf("%s[%d]", fp, i)
		switch {
		case !slices.Contains(names, c):
			p.addf(nodes[i], ip, "unknown channel %q%s; channels are %s", c, yamlnode.Suggest(c, names), strings.Join(names, ", "))
		case sp.channelAt[c] != nil:
			p.addf(nodes[i], ip, "channel %q is listed twice (first on line %d)", c, sp.channelAt[c].Line)
		default:
			sp.channelAt[c] = nodes[i]
			sp.st.Channels = append(sp.st.Channels, c)
		}
	}
	if p.emptyList(v) {
		p.addf(p.Resolve(v), fp, "no channels; a step needs at least one of %s", strings.Join(names, ", "))
	}
	sp.channelsKnown = len(p.errs) == before
}

// stepTargets reads targets: people and team destinations, each once.
func (p *ladderParser) stepTargets(sp *stepParse) {
	before := len(p.errs)
	v := sp.vals["targets"]
	fp := sp.path + ".targets"
	if v == nil {
		p.addf(sp.sn.node, fp, "missing; a step needs at least one target: %s", p.targetForms())
		return
	}
	items, nodes := p.StrList(v, fp)
	if len(items) > maxTargets {
		p.addf(p.Resolve(v), fp, "%d targets; a step has at most %d (use a group: target)", len(items), maxTargets)
		items, nodes = items[:maxTargets], nodes[:maxTargets]
	}
	firstAt := map[Target]int{}
	for i, s := range items {
		ip := fmt.Sprintf("%s[%d]", fp, i)
		t, msg := p.target(s)
		if msg != "" {
			p.addf(nodes[i], ip, "%s", msg)
			continue
		}
		if line, dup := firstAt[t]; dup {
			p.addf(nodes[i], ip, "target %q is listed twice (first on line %d)", t.String(), line)
			continue
		}
		firstAt[t] = nodes[i].Line
		sp.st.Targets = append(sp.st.Targets, t)
		sp.targets = append(sp.targets, placedTarget{t, nodes[i], ip})
	}
	if p.emptyList(v) {
		p.addf(p.Resolve(v), fp, "no targets; a step needs at least one: %s", p.targetForms())
	}
	sp.targetsKnown = len(p.errs) == before
}

// stepReach checks that every target is reached on some channel, and every channel reaches some
// target: a team destination needs its kind among the channels, people need a kind that reaches
// people, and a kind that reaches only people (or only teams) needs targets of that sort.
func (p *ladderParser) stepReach(sp *stepParse) {
	if !sp.channelsKnown {
		return
	}
	people := 0
	teams := map[string]int{}
	reachPeople := slices.ContainsFunc(sp.st.Channels, func(c string) bool { k, _ := p.kinds.Kind(c); return k.People })
	for _, x := range sp.targets {
		switch {
		case x.t.Team() && sp.channelAt[string(x.t.Kind)] == nil:
			p.addf(x.node, x.path, "%s posts to %s, but the step's channels have no %s; add it to channels", x.t, x.t.Kind, x.t.Kind)
		case x.t.Team():
			teams[string(x.t.Kind)]++
		default:
			people++
			if !reachPeople {
				p.addf(x.node, x.path, "%s reaches bridges, not people: %s would not be notified; add a channel that reaches people (%s)",
					strings.Join(sp.st.Channels, " and "), x.t, orList(p.kinds.Where(func(k channel.Kind) bool { return k.People })))
			}
		}
	}
	if !sp.targetsKnown {
		return
	}
	for _, c := range sp.st.Channels {
		k, _ := p.kinds.Kind(c)
		at := channelPath(sp.path+".channels", c, sp.st.Channels)
		switch {
		case !k.People && teams[c] == 0:
			p.addf(sp.channelAt[c], at, "the %s channel posts to %s targets, and the step has none", c, k.TeamForm)
		case k.People && k.Contact != nil && k.Team == nil && people == 0:
			p.addf(sp.channelAt[c], at, "%s reaches people, and the step targets none; add an email address, group: or role: target", c)
		}
	}
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// stepQuiet reads quiet_hours and override_quiet_hours_at.
func (p *ladderParser) stepQuiet(sp *stepParse) {
	if v := sp.vals["quiet_hours"]; v != nil {
		if s, ok := p.Str(v, sp.path+".quiet_hours"); ok {
			switch Quiet(s) {
			case QuietRespect, QuietIgnore:
				sp.st.Quiet = Quiet(s)
			default:
				p.addf(p.Resolve(v), sp.path+".quiet_hours", "quiet_hours %q must be respect (skip people in their quiet hours) or ignore (reach them anyway)%s",
					s, yamlnode.Suggest(s, []string{string(QuietRespect), string(QuietIgnore)}))
			}
		}
	}
	v := sp.vals["override_quiet_hours_at"]
	if v == nil {
		return
	}
	fp := sp.path + ".override_quiet_hours_at"
	s, ok := p.Str(v, fp)
	if !ok {
		return
	}
	vn := p.Resolve(v)
	lv := strings.ToLower(strings.TrimSpace(s))
	switch {
	case !slices.Contains(riskLevels, lv):
		p.addf(vn, fp, "unknown risk level %q; use medium, high or critical%s", s, yamlnode.Suggest(lv, riskLevels))
	case lv == "low":
		p.addf(vn, fp, "every handoff is at least low, so this always overrides quiet hours; say quiet_hours: ignore instead")
	case sp.st.Quiet == QuietIgnore:
		p.addf(vn, fp, "quiet_hours is ignore, so quiet hours are overridden for every risk already; remove one of the two")
	default:
		sp.st.OverrideQuietAt = lv
	}
}

func (p *ladderParser) redial(n *yaml.Node, path string) Redial {
	var r Redial
	keys := map[string]bool{}
	if !p.Mapping(n, path, []string{"times", "gap"}, func(key string, _, v *yaml.Node) {
		keys[key] = true
		switch key {
		case "times":
			r.Times, _ = p.integer(v, path+".times", 1, maxRedialTimes)
		case "gap":
			r.Gap, _ = p.duration(v, path+".gap", minRedialGap, maxRedialGap)
		}
	}) {
		return Redial{}
	}
	for _, k := range []string{"times", "gap"} {
		if !keys[k] {
			p.addf(p.Resolve(n), path+"."+k, "missing; redial needs times (1 to %d) and gap (%s to %s)", maxRedialTimes, FormatDuration(minRedialGap), FormatDuration(maxRedialGap))
		}
	}
	return r
}

func (p *ladderParser) providers(n *yaml.Node, path string, channelAt map[string]*yaml.Node, channelsKnown bool) map[string][]string {
	var out map[string][]string
	failover := p.kinds.Where(func(k channel.Kind) bool { return k.Failover })
	p.Entries(n, path, nil, func(kind, kp string, k, v *yaml.Node) {
		switch {
		case !slices.Contains(failover, kind):
			if _, known := p.kinds.Kind(kind); known {
				p.addf(k, kp, "%s has no providers to choose between; providers applies to %s", kind, strings.Join(failover, ", "))
			} else {
				p.addf(k, kp, "unknown channel %q%s; providers applies to %s", kind, yamlnode.Suggest(kind, failover), strings.Join(failover, ", "))
			}
			return
		case channelsKnown && channelAt[kind] == nil:
			p.addf(k, kp, "providers for %s, but the step's channels have no %s", kind, kind)
			return
		}
		names, nodes := p.StrList(v, kp)
		var list []string
		for i, s := range names {
			ip := fmt.Sprintf("%s[%d]", kp, i)
			switch {
			case !providerNameRE.MatchString(s):
				p.addf(nodes[i], ip, "provider name %q must be 1 to 32 lower-case letters, digits, '_' or '-'", s)
			case slices.Contains(list, s):
				p.addf(nodes[i], ip, "provider %q is listed twice", s)
			default:
				list = append(list, s)
			}
		}
		if p.emptyList(v) {
			p.addf(p.Resolve(v), kp, "no providers; list them in the order to try, or leave %s out for the configured order", kind)
			return
		}
		if len(list) > 0 {
			if out == nil {
				out = map[string][]string{}
			}
			out[kind] = list
		}
	})
	return out
}

// teamKinds are the kinds a ladder may target directly, by name, in the order messages list them.
func (p *ladderParser) teamKinds() []channel.Kind {
	var out []channel.Kind
	for _, name := range p.kinds.Where(func(k channel.Kind) bool { return k.Team != nil }) {
		k, _ := p.kinds.Kind(name)
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b channel.Kind) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// targetForms lists the target forms for messages.
func (p *ladderParser) targetForms() string {
	forms := []string{"an email address", "group:<name>", "role:admin", "role:member"}
	for _, k := range p.teamKinds() {
		forms = append(forms, k.TeamForm)
	}
	return orList(forms)
}

// target reads a target's YAML form; the message says what is wrong, or is "".
func (p *ladderParser) target(s string) (Target, string) {
	if s == "" {
		return Target{}, "empty target; use " + p.targetForms()
	}
	kind, value, found := strings.Cut(s, ":")
	if !found {
		if strings.Contains(s, "@") {
			addr := strings.ToLower(s)
			a, err := mail.ParseAddress(addr)
			if err != nil || a.Name != "" || a.Address != addr {
				return Target{}, fmt.Sprintf("%q is not a plain email address such as ana@example.com (no name, no <>)", s)
			}
			return Target{Kind: TargetUser, Value: addr}, ""
		}
		return Target{}, fmt.Sprintf("unknown target %q; use %s", s, p.targetForms())
	}
	switch kind {
	case "group":
		if !ladderNameRE.MatchString(value) {
			return Target{}, fmt.Sprintf("group name %q must be %s", value, nameRule)
		}
		return Target{Kind: TargetGroup, Value: value}, ""
	case "role":
		switch value {
		case "admin", "member":
			return Target{Kind: TargetRole, Value: value}, ""
		case "viewer":
			return Target{}, "viewers cannot decide handoffs, so role:viewer would reach nobody who can act; use role:admin or role:member"
		}
		return Target{}, fmt.Sprintf("unknown role %q; use role:admin or role:member%s", value, yamlnode.Suggest(value, []string{"admin", "member"}))
	}
	var forms []string
	for _, k := range p.teamKinds() {
		if k.Name == kind {
			if err := k.Team(value); err != nil {
				return Target{}, err.Error()
			}
			return Target{Kind: TargetKind(kind), Value: value}, ""
		}
		forms = append(forms, k.Name)
	}
	return Target{}, fmt.Sprintf("unknown target kind %q%s; use %s", kind, yamlnode.Suggest(kind, append([]string{"group", "role"}, forms...)), p.targetForms())
}

// --- Values of the ladder format; yamlnode.Walker reads the shapes ---

// strOrList is strList that also takes a single string, as in risk: critical.
func (p *ladderParser) strOrList(n *yaml.Node, path string) ([]string, []*yaml.Node) {
	if r := p.Resolve(n); r.Kind == yaml.ScalarNode && !yamlnode.IsNull(r) {
		if s, ok := p.Str(r, path); ok {
			return []string{s}, []*yaml.Node{r}
		}
		return nil, nil
	}
	return p.StrList(n, path)
}

func (p *ladderParser) boolean(n *yaml.Node, path string) (bool, bool) {
	n = p.Resolve(n)
	if !p.Visit(n) {
		return false, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	p.addf(n, path, "expected true or false, got %s", yamlnode.DescribeValue(n))
	return false, false
}

func (p *ladderParser) integer(n *yaml.Node, path string, lo, hi int) (int, bool) {
	n = p.Resolve(n)
	if !p.Visit(n) {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		var v int64
		if err := n.Decode(&v); err == nil && v >= int64(lo) && v <= int64(hi) {
			return int(v), true
		}
		p.addf(n, path, "%s is out of range; use %d to %d", yamlnode.DescribeValue(n), lo, hi)
		return 0, false
	}
	p.addf(n, path, "expected a whole number from %d to %d, got %s", lo, hi, yamlnode.DescribeValue(n))
	return 0, false
}

// duration reads a Go duration ("90s", "5m", "1h30m"). A bare number other than 0 is refused rather
// than guessed at: 300 could mean seconds or minutes.
func (p *ladderParser) duration(n *yaml.Node, path string, lo, hi time.Duration) (time.Duration, bool) {
	n = p.Resolve(n)
	if !p.Visit(n) {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || yamlnode.IsNull(n) {
		p.addf(n, path, "expected a duration such as 90s, 5m or 1h30m, got %s", yamlnode.Describe(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.addf(n, path, "bad duration %s; use a number with a unit, such as 90s, 5m or 1h30m", yamlnode.DescribeValue(n))
		return 0, false
	}
	if d < lo || d > hi {
		p.addf(n, path, "%s is out of range; use %s to %s", FormatDuration(d), FormatDuration(lo), FormatDuration(hi))
		return 0, false
	}
	return d, true
}
