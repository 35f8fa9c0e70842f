"""The core actions: a phase's Actions -> Stevedore forms calling the script functions of
crates/core/*.pallet, and those forms -> one script with the status protocol.

    rendered = render_actions(actions, target, read_file)   # forms, bundle files, library
    text = compile_phase_script(rendered, target)           # bash, sh or PowerShell

Every value a user wrote reaches the script as a form (an Atom), never as pasted source text,
so the emitters quote it. The script prints `PALLET-ACTION <n> <ok|changed|failed> <label>`
per action and `PALLET-SUMMARY ok=<n> changed=<n> failed=<n>` at the end (status.pallet).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence

from pallet.compiler.model import Action
from pallet.errors import PalletError, Span
from pallet.grammar.forms import Atom, Form, Keyword, ListForm, Symbol
from pallet.grammar.cache import read_cached
from pallet.secret import Redactor, Secret, SecretStore, has_secret, reveal
from pallet.stevedore import ScriptForms, ScriptLibrary, Target, ast as A, emit
from pallet.stevedore.library import library_from_forms
from pallet.stevedore.lower import Lowering
from pallet.stevedore.script_words import ScriptWord

from . import action_content as content
from .action_options import ACTION_OPTIONS

ReadFile = Callable[[str], bytes]

# remote-file keeps this many backups of the content it replaced, unless told otherwise.
DEFAULT_BACKUPS = 5


@lru_cache(maxsize=1)
def core_library() -> ScriptLibrary:
    """The script functions of crates/core/*.pallet, read once."""
    folder = resources.files("pallet.crates").joinpath("core")
    forms: list[Form] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".pallet"):
            forms += read_cached(entry.read_text(encoding="utf-8"), f"crates/core/{entry.name}")
    return library_from_forms(forms)


@dataclass(frozen=True)
class Step:
    """One action block of the script: one status line."""

    number: int
    label: str
    where: str                       # Action.where: the spec's call, via crate functions
    forms: tuple[Form, ...]          # between (pallet-begin ...) and (pallet-end)
    sources: tuple[str, ...] = ()    # every spec location gathered into this step
    bodies: bool = False             # its forms reach spec values (~pallet-body-n)
    kind: str = ""                   # the action's kind; "packages" for the gathered step
    calls: tuple[str, ...] = ()      # the library functions its forms call, in order
    # The sha256 of each file the step installs. Its forms name them by placeholders
    # (_FILE_HOLE), so that steps differing only in a file's content are equal: their text
    # is made once, and the shas put in.
    holes: tuple[str, ...] = field(default=(), compare=False)
    action: Action | None = field(default=None, compare=False, repr=False)  # for errors

    def __hash__(self) -> int:
        """Of the fields == compares, made once: every bundle's steps are looked up in the
        caches of step texts, and hashing the forms again each time was most of that."""
        made = self.__dict__.get("_hash")
        if made is None:
            made = hash((self.number, self.label, self.where, self.forms, self.sources,
                         self.bodies, self.kind, self.calls))
            object.__setattr__(self, "_hash", made)   # not a field: not in ==, replace, repr
        return made

    def with_holes(self, holes: tuple[str, ...]) -> "Step":
        """replace(self, holes=holes), without its cost, the hash kept (holes are not in it)."""
        made = object.__new__(Step)
        made.__dict__.update(self.__dict__)
        made.__dict__["holes"] = holes
        return made

    def __getstate__(self) -> dict:   # a str's hash differs in another process
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    @property
    def filled_forms(self) -> tuple[Form, ...]:
        """The forms with the shas in place of their placeholders."""
        if not self.holes:
            return self.forms
        shas = {_FILE_HOLE.format(n): sha for n, sha in enumerate(self.holes, 1)}

        def fill(form: Form) -> Form:
            if type(form) is _Hole:
                return Atom(shas[form.value], form.span)
            if isinstance(form, ListForm):
                return ListForm(tuple(fill(item) for item in form.items), form.span)
            return form
        return tuple(fill(form) for form in self.forms)

    def fill_text(self, text: str) -> str | None:
        """Step text (bash or sh) made from the forms, with the shas put in: a sha and its
        placeholder are both bare words there. None when a placeholder is not in the text
        exactly once (a value written as one): then the filled forms are lowered instead."""
        for number, sha in enumerate(self.holes, 1):
            placeholder = _FILE_HOLE.format(number)
            if text.count(placeholder) != 1:
                return None
            text = text.replace(placeholder, sha)
        return text


@dataclass(frozen=True)
class _Hole(Atom):
    """The placeholder of a file's sha256 in a step's forms (never equal to an Atom)."""


# Letters and digits only: a bare word in bash and sh, as a sha is.
_FILE_HOLE = "PALLETFILEHOLE{}X"


@dataclass(frozen=True)
class RenderedPhase:
    steps: tuple[Step, ...]
    files: tuple[tuple[str, bytes], ...]   # ("files/<sha256>", content), first use first
    library: ScriptLibrary = field(compare=False, repr=False)
    # The script bodies of exec-script actions, reached from the forms as ~name.
    bodies: tuple[tuple[str, ScriptForms], ...] = field(default=(), compare=False, repr=False)
    secret_files: tuple[str, ...] = ()   # the names among `files` whose content is secret

    @property
    def forms(self) -> tuple[Form, ...]:
        """The whole script as forms, in order."""
        out: list[Form] = [_call("pallet-start")]
        for step in self.steps:
            out += [_begin(step), *step.filled_forms, _call("pallet-end")]
        return tuple(out + [_call("pallet-finish", 0)])


class RenderMemo:
    """Rendered steps of one compile, reused across the bundles that record the same action
    at the same place: the nodes of a group mostly do. A step depends only on the target, the
    action (its values with their types, its place), its number and its flags; the memo keys
    on all of them, so output is the same with or without it. Two values reach a step only
    through a name, so the key leaves them out: a remote-file's :content string (the step
    names the file by the sha of its bytes, put in per bundle) and exec-script bodies (the
    step names them ~pallet-body-N; each bundle's own are lowered there, and N is in the
    key). Actions carrying other values than strings, keywords, numbers and booleans are
    not memoised."""

    def __init__(self) -> None:
        self.steps: dict[tuple, tuple[Step, tuple[tuple[str, bytes], ...]]] = {}


def render_actions(actions: Sequence[Action], target: Target, read_file: ReadFile,
                   library: ScriptLibrary | None = None,
                   memo: RenderMemo | None = None) -> RenderedPhase:
    r = _Renderer(target, read_file, library or core_library())
    items = _gather_packages(actions)
    r.flags = _plan_flags(items)
    for index, item in enumerate(items):
        r.current = index
        if isinstance(item, _PackageStep):
            for action in item.actions:
                _refuse_secrets(action)
            r.package_step(item)
            continue
        key = None
        if memo is not None and r.library is core_library():
            key = _memo_key(item, target, len(r.steps), r.flags, index, len(r.bodies))
            hit = memo.steps.get(key) if key is not None else None
            if hit is not None:
                _reuse(r, item, *hit)
                continue
        before = len(r.steps), len(r.files), len(r.bodies)
        try:
            r.action(item)
        except PalletError as exc:
            raise _at_call(exc, item) from None
        if key is not None and len(r.steps) == before[0] + 1:
            step, files = r.steps[-1], tuple(r.files.items())[before[1]:]
            if _reusable(item, step, files, tuple(r.bodies.values())[before[2]:]):
                memo.steps[key] = (step, files)
    return RenderedPhase(tuple(r.steps), tuple(r.files.items()), r.library, tuple(r.bodies.items()),
                         tuple(r.secret_files))


def _at_call(exc: PalletError, action: Action) -> PalletError:
    """An error inside a crate's script, shown at the call in the user's file (as the
    evaluator shows the crate's other errors), the place in the crate kept as a note."""
    call = action.call
    if call is None or exc.span is None or exc.span.file == call.file:
        return exc
    inner = action.via[-1].partition(" (")[0] if action.via else "a crate function"
    return PalletError(exc.message, call, (f"  in {inner}, at {exc.span}", *exc.notes))


_MEMO_VALUE_TYPES = (str, int, bool, float, type(None), Keyword)
_NO_MEMO_KINDS = ("publish",)
_BODY_KINDS = ("exec-script", "exec-checked-script")
_CONTENT, _BODY = object(), object()   # in a key: this bundle's own, put in by _reuse


def _memo_key(action: Action, target: Target, number: int, flags: "_Flags", index: int,
              bodies: int) -> tuple | None:
    kind = action.kind
    if kind in _NO_MEMO_KINDS:
        return None
    with_bodies = kind in _BODY_KINDS
    values: list = []
    for value in action.args:
        if type(value) is tuple and all(type(v) is str for v in value):
            values.append(value)
        elif type(value) in _MEMO_VALUE_TYPES:   # the type too: True == 1, but not as a value
            values.append((type(value), value))
        elif with_bodies and type(value) is ScriptForms:
            values.append(_BODY)
        else:
            return None
    for name, value in action.options:
        if type(value) is str and name == "content" and kind == "remote-file":
            values.append((name, str, _CONTENT))
        elif with_bodies and name == "unless" and type(value) is ScriptForms:
            values.append((name, _BODY))
        elif type(value) not in _MEMO_VALUE_TYPES or name == "secret":
            return None
        else:
            values.append((name, type(value), value))
    return (target, kind, action.label, action.where, number, tuple(values),
            tuple(flags.raises.get(index, ())), tuple(flags.waits.get(index, ())),
            tuple(flags.clears.get(index, ())), bodies if with_bodies else None)


def _own_content(action: Action) -> tuple[str, bytes] | None:
    """A remote-file's :content string as the bundle carries it (remote_file_content's
    bytes): (sha256, bytes); None for other actions."""
    if action.kind != "remote-file":
        return None
    text = action.option("content")
    if type(text) is not str:
        return None
    data = text.encode("utf-8")
    return hashlib.sha256(data).hexdigest(), data


def _own_bodies(action: Action) -> list:
    """The script bodies an exec-script action adds, in the order _Renderer.exec_script adds
    them (the last one its :unless test, quiet)."""
    if action.kind not in _BODY_KINDS:
        return []
    out = [a for a in action.args if type(a) is ScriptForms]
    unless = action.option("unless")
    if type(unless) is ScriptForms:
        out.append(replace(unless, quiet=True))
    return out


def _reusable(action: Action, step: Step, files: tuple, bodies: tuple) -> bool:
    """Is the step just rendered one that _reuse makes again for another bundle from the
    key? Its files and bodies must be this action's own :content and bodies, where _reuse
    puts the other bundle's."""
    if list(bodies) != _own_bodies(action):
        return False
    own = _own_content(action)
    if own is None:
        return True
    if not step.holes:   # the content is not carried (:action :delete)
        return not files
    return step.holes == (own[0],) and all(name == f"files/{own[0]}" for name, _ in files)


def _reuse(r: "_Renderer", action: Action, step: Step, files: tuple) -> None:
    """A memoised step for this bundle: with its own file and bodies (see RenderMemo)."""
    own = _own_content(action)
    if own is not None and step.holes:
        sha, data = own
        r.files.setdefault(f"files/{sha}", data)
        r.steps.append(step.with_holes((sha,)))
        return
    for body in _own_bodies(action):
        r.add_body(body)
    r.steps.append(step)
    for name, data in files:
        r.files.setdefault(name, data)


def compile_phase_script(rendered: RenderedPhase, target: Target, cache: bool = True,
                         secrets: SecretStore | None = None) -> str:
    """The script text. What does not depend on the node is made once and reused: the
    library functions a phase uses depend only on the target and on which functions its
    steps call, and for bash and sh each step's text only on the step. The output is the
    same as without the caches (a test compares them), only much faster.

    Secret values the steps use are put in `secrets` (the bundle carries them as
    secrets/N); the script reads them when it starts and names only their variables."""
    store = secrets if secrets is not None else SecretStore()
    shared = None
    if cache and rendered.library is core_library():
        shared = _hoisted(target, _called(rendered))
    lowering = _lowering(rendered, target, shared, store)
    if shared is not None and shared[1] is not None:
        chunks = [shared[1], _emit_stmts(_start(lowering, target), target)]
        for step in rendered.steps:
            if step.bodies:  # values from spec code: lowered for this node
                text = _with_bodies(step, lowering, target)
                chunks.append(text if text is not None
                              else _emit_stmts(_step_stmts(step, lowering), target))
            else:
                text = step.fill_text(_step_text(target, step))
                chunks.append(text if text is not None
                              else _emit_stmts(_step_stmts(step, lowering), target))
        chunks.append(_emit_stmts(_finish(lowering, target), target))
        if len(store):
            chunks.insert(2, _emit_stmts(_read_secrets(lowering, store), target))
        if tuple(lowering.functions.values()) == shared[0]:  # bodies hoisted nothing else
            return "".join(chunks)
        lowering = _lowering(rendered, target, shared, store)
    stmts = _start(lowering, target)
    started = len(stmts)
    for step in rendered.steps:
        stmts += _step_stmts(step, lowering)
    stmts += _finish(lowering, target)
    if len(store):
        stmts[started:started] = _read_secrets(lowering, store)
    return emit(A.Script(tuple(lowering.functions.values()), A.Block(tuple(stmts))), target.shell)


def _read_secrets(lowering: Lowering, store: SecretStore) -> list[A.Stmt]:
    """The script's first statements after pallet-start: each secret value the bundle
    carries, secrets/N, read into pallet_secret_N."""
    forms: list[Form] = []
    for number in range(1, len(store) + 1):
        forms += [_call("pallet-secret", number),
                  ListForm((Symbol("set!"), Symbol(f"pallet-secret-{number}"),
                            ListForm((Symbol("deref"), Symbol("pallet-v")))))]
    forms.append(ListForm((Symbol("set!"), Symbol("pallet-v"), Atom(""))))
    return [A.Raw(""), A.Comment(f"the {len(store)} secret value{'s' * (len(store) != 1)} "
                                 "this bundle carries in secrets/, never in this script"),
            _lower(lowering, forms)]


def _lowering(rendered: RenderedPhase, target: Target, shared,
              secrets: SecretStore | None = None) -> Lowering:
    bodies = dict(rendered.bodies)

    def resolve(form: Form) -> object:
        if isinstance(form, Symbol) and form.name in bodies:
            return bodies[form.name]
        raise PalletError(f"internal: no value for ~{form}", getattr(form, "span", None))

    lowering = Lowering(target, rendered.library, resolve)
    lowering.secrets = secrets
    if shared is not None:
        lowering.functions.update((f.name, f) for f in shared[0])  # not lowered again
    return lowering


def _lower(lowering: Lowering, forms: Sequence[Form]) -> A.Block:
    return A.Block(tuple(_plain_call(f, lowering.functions) or lowering.stmt(f) for f in forms))


def _start(lowering: Lowering, target: Target) -> list[A.Stmt]:
    stmts: list[A.Stmt] = [_lower(lowering, [_call("pallet-start")])]
    if target.shell == "powershell":  # the shells stop through their EXIT trap
        stmts.append(A.Raw("try {"))
    return stmts


def _finish(lowering: Lowering, target: Target) -> list[A.Stmt]:
    stmts: list[A.Stmt] = [A.Raw(""), _lower(lowering, [_call("pallet-finish", 0)])]
    if target.shell == "powershell":
        stmts.append(A.Raw('} catch {\n    pallet_finish "$_"\n}'))
    return stmts


def _step_stmts(step: Step, lowering: Lowering, filled: bool = True) -> list[A.Stmt]:
    stmts: list[A.Stmt] = [A.Raw(""), A.Comment(f"{step.where} {step.label}")]
    if len(step.sources) > 1:
        stmts.append(A.Comment("gathered from " + ", ".join(step.sources)))
    forms = step.filled_forms if filled else step.forms
    try:
        stmts.append(_lower(lowering, [_begin(step), *forms, _call("pallet-end")]))
    except PalletError as exc:
        if step.action is None:
            raise
        raise _at_call(exc, step.action) from None
    return stmts


def _emit_stmts(stmts: list[A.Stmt], target: Target) -> str:
    """Top-level statements of a bash or sh script: their text does not depend on the rest."""
    return emit(A.Script((), A.Block(tuple(stmts))), target.shell, header=False)


@lru_cache(maxsize=8192)
def _step_text(target: Target, step: Step) -> str:
    lowering = Lowering(target, core_library())
    lowering.functions.update((f.name, f) for f in _all_hoistable(target))
    return _emit_stmts(_step_stmts(step, lowering, filled=False), target)


# The place of a body (~pallet-body-n) in a step's text made once for all nodes: letters and
# digits, so a bare command word, alone on its line where the body is a statement.
_BODY_HOLE = "PALLETBODYHOLE{}X"


def _with_bodies(step: Step, lowering: Lowering, target: Target) -> str | None:
    """The text of a step whose forms splice spec values (exec-script bodies): the step's own
    forms made once (_body_template), this node's bodies lowered into their places. None when
    a body is not a statement of its own line (an :unless test, a publish): then the whole
    step is lowered for the node."""
    template = _body_template(target, step)
    if template is None:
        return None
    pieces, holes = template
    from pallet.stevedore.emit_posix import PosixEmitter, _indent_by
    out = [pieces[0]]
    for (form, indent), piece in zip(holes, pieces[1:]):
        stmt = lowering.stmt(form)   # what lowering the whole step makes of the form
        lines = PosixEmitter(target.shell).block_lines(A.Block((stmt,))) if stmt is not None else []
        if not lines:
            return None              # an empty body: the whole step decides (a `:` maybe)
        out.append("\n".join(_indent_by(indent, lines)))
        out.append(piece)
    return "".join(out)


@lru_cache(maxsize=4096)
def _body_template(target: Target, step: Step) -> tuple[tuple[str, ...], tuple[tuple[Form, str], ...]] | None:
    """The step's text (its file shas in place) cut where its bodies go: the pieces around
    them, and each body's form with the indentation of its line. None when a body is not a
    statement alone on its line."""
    holes: list[Form] = []

    def swap(form: Form) -> Form:
        if type(form) is ListForm:
            items = form.items
            if (len(items) == 2 and type(items[0]) is Symbol and items[0].name == "unquote"
                    and type(items[1]) is Symbol and items[1].name.startswith("pallet-body-")):
                holes.append(form)
                return ListForm((Symbol(_BODY_HOLE.format(len(holes))),), form.span)
            return ListForm(tuple(swap(item) for item in items), form.span)
        return form
    shape = replace(step, forms=tuple(swap(form) for form in step.forms), bodies=False)
    if not holes:
        return None
    try:
        text = step.fill_text(_step_text(target, shape))
    except PalletError:
        return None
    if text is None:
        return None
    pieces, places = [], []
    rest = text
    for number, form in enumerate(holes, 1):
        hole = _BODY_HOLE.format(number)
        if text.count(hole) != 1:
            return None
        before, _, after = rest.partition(hole)
        line_start = before.rfind("\n") + 1
        indent = before[line_start:]
        if indent.strip(" ") or not (after == "" or after.startswith("\n")):
            return None              # not alone on its line: inside a test, a word
        pieces.append(before[:line_start])
        places.append((form, indent))
        rest = after
    pieces.append(rest)
    return tuple(pieces), tuple(places)


@lru_cache(maxsize=64)
def _all_hoistable(target: Target) -> tuple[A.FuncDef, ...]:
    """Every library function the target can have, lowered: a step's text only names them.
    (One the target cannot have, such as a package function without a packager, is left
    out; a step that calls it fails in Lowering with a located error.)"""
    functions: dict[str, A.FuncDef] = {}
    for name in core_library().functions:
        try:
            functions.update((f.name, f) for f in _hoisted(target, (name,))[0])
        except PalletError:
            continue
    return tuple(functions.values())


def _plain_call(form: Form, hoisted: dict[str, A.FuncDef]) -> A.Command | None:
    """A call of a hoisted library function with literal words (what the renderer makes),
    as the command Lowering would make of it, without lowering it again."""
    if not (isinstance(form, ListForm) and isinstance(form.items[0], Symbol)):
        return None
    name = form.items[0].name.replace("-", "_")
    fn = hoisted.get(name)
    if fn is None or not all(isinstance(a, Atom) and type(a.value) is str for a in form.items[1:]):
        return None
    if len(form.items) - 1 != len(fn.params) and not (fn.rest and len(form.items) > len(fn.params)):
        return None  # Lowering reports the wrong number of arguments
    return A.Command((A.lit(name), *(A.lit(a.value) for a in form.items[1:])), (), form.span)


def _called(rendered: RenderedPhase) -> tuple[str, ...]:
    """The library functions the script calls at top level, in order of first call."""
    names = {"pallet-start": None}
    for step in rendered.steps:
        names["pallet-begin"] = None
        names.update(dict.fromkeys(step.calls))
        names["pallet-end"] = None
    names["pallet-finish"] = None
    return tuple(names)


def _calls_in(form: Form):
    if isinstance(form, ListForm) and form.items:
        head = form.items[0]
        if isinstance(head, Symbol) and head.name in core_library().functions:
            yield head.name
        for item in form.items[1:]:
            yield from _calls_in(item)


@lru_cache(maxsize=256)
def _hoisted(target: Target, called: tuple[str, ...]) -> tuple[tuple[A.FuncDef, ...], str | None]:
    """The functions a script calling `called` (in that order) carries, and for bash and sh
    their text with the script header."""
    library = core_library()
    calls = [ListForm((Symbol(name), *(Atom("") for p in library.functions[name].params
                                       if not p.startswith("&"))))
             for name in called]
    functions = Lowering(target, library).program(calls).functions
    text = None
    if target.shell != "powershell":
        text = emit(A.Script(functions, A.Block(())), target.shell)
    return functions, text


# ---- forms -----------------------------------------------------------------------------


def _word(value: Any) -> Atom:
    """A value as one literal word: "" for absent, "true" for a set flag (a ScriptWord, a
    word made from scripts in spec code, stays that word)."""
    if type(value) is ScriptWord:
        return Atom(value)
    if value is None or value is False:
        return Atom("")
    if value is True:
        return Atom("true")
    if type(value) is Secret:   # lowered as the variable the script reads it into
        return Atom(value)
    if isinstance(value, (Keyword, Symbol)):
        return Atom(value.name)
    return Atom(str(value))


def _call(fn: str, *args: Any, span: Span | None = None) -> ListForm:
    return ListForm((Symbol(fn, span), *(a if isinstance(a, (ListForm, Atom)) else _word(a) for a in args)),
                    span)


def _begin(step: Step) -> ListForm:
    return _call("pallet-begin", step.number, step.label, step.where)


# Where an action takes a secret: remote-file's content (and the values of its template);
# scripts reach secrets through ~ (exec-script). Anywhere else a secret would be shown (in a
# label, a path) or passed to a program as an argument.
_SECRET_OPTIONS = {"remote-file": ("content", "values")}


def _refuse_secrets(action: Action) -> None:
    takes = _SECRET_OPTIONS.get(action.kind, ())
    where = ["its arguments"] if has_secret(action.args) else []
    where += [f":{_name(k)}" for k, v in action.options if _name(k) not in takes and has_secret(v)]
    if where:
        allowed = (" (it takes one in " + " and ".join(":" + t for t in takes) + ")") if takes else ""
        raise PalletError(f"{action.kind}: a secret cannot be in {where[0]}{allowed}: it would "
                          "be shown in labels and logs, or given to a program on the node as "
                          "an argument. Secrets go into files (remote-file :content, "
                          ":template with :values) and scripts (~ in exec-script)", action.span)


def _one_line(text: str) -> str:
    """Labels are one line of the status protocol: control characters become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


# ---- options -----------------------------------------------------------------------------


def _name(value: Any) -> Any:
    return value.name if isinstance(value, (Keyword, Symbol)) else value


def _options(action: Action) -> dict[str, Any]:
    """The action's options by name (keyword values by name); one it does not take is an
    error. The evaluator has checked them already against the same table."""
    allowed = ACTION_OPTIONS.get(action.kind, ())
    opts: dict[str, Any] = {}
    for key, value in action.options:
        key = _name(key)
        if key not in allowed:
            raise PalletError(f"{action.kind} has no option :{key}; its options are "
                              + " ".join(":" + a for a in allowed), action.span)
        opts[key] = _name(value) if isinstance(value, (Keyword, Symbol)) else value
    return opts


def _flag(action: Action, opts: dict, name: str, default: bool) -> bool:
    value = opts.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise PalletError(f"{action.kind} :{name} is true or false, not {value!r}", action.span)
    return value


def _choice(action: Action, opts: dict, name: str, choices: Sequence[str], default: str) -> str:
    value = opts.get(name) or default
    if value not in choices:
        raise PalletError(f"{action.kind} :{name} must be one of "
                          + " ".join(":" + c for c in choices) + f", not {value!r}", action.span)
    return value


def _string(action: Action, value: Any, what: str) -> str:
    if type(value) is Secret:
        raise PalletError(f"{action.kind}: {what} cannot be a secret: it is shown in the "
                          "action's label and passed to programs on the node as an argument",
                          action.span)
    if isinstance(value, (Keyword, Symbol)):
        return value.name
    if type(value) is ScriptWord:
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise PalletError(f"{action.kind}: {what} must be a non-empty string, not {value!r}",
                          action.span)
    return str(value)


def _args(action: Action, count: int, usage: str) -> tuple[Any, ...]:
    if len(action.args) != count:
        raise PalletError(f"{action.kind} takes {count} argument{'s' * (count != 1)}, "
                          f"got {len(action.args)}; usage: {usage}", action.span)
    return action.args


def _mode(action: Action, value: Any) -> str:
    """:mode 644, "0644" or "u=rw..." is not accepted: octal digits, as stat prints them."""
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, bool) or not re.fullmatch(r"0*[0-7]{1,4}", text):
        raise PalletError(f"{action.kind} :mode must be octal digits such as 644 or \"0755\", "
                          f"not {value!r}", action.span)
    return text.lstrip("0") or "0"


def _id(action: Action, value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]+", str(value)):
        raise PalletError(f"{action.kind} {what} must be a number, not {value!r}", action.span)
    return str(value)


def _owner(action: Action, opts: dict, name: str) -> str:
    value = opts.get(name)
    return "" if value is None else _string(action, value, f":{name}")


# Pallet's user action took a shell by name.
_SHELL_NAMES = {"bash": "/bin/bash", "csh": "/bin/csh", "ksh": "/bin/ksh", "rsh": "/bin/rsh",
                "sh": "/bin/sh", "tcsh": "/bin/tcsh", "zsh": "/bin/zsh", "false": "/bin/false"}


# ---- package gathering ---------------------------------------------------------------------

_PACKAGE_KINDS = ("package", "packages")
_MOVED_BEFORE_PACKAGES = ("package-source", "package-manager")


@dataclass
class _PackageStep:
    actions: list[Action]


def _gather_packages(actions: Sequence[Action]) -> list:
    """All package actions of the phase as one step where the first one was; sources and
    package-manager updates written after it move before it (Pallet's ordering)."""
    out: list = []
    step: _PackageStep | None = None
    for action in actions:
        if action.kind in _PACKAGE_KINDS:
            if step is None:
                step = _PackageStep([])
                out.append(step)
            step.actions.append(action)
        elif step is not None and action.kind in _MOVED_BEFORE_PACKAGES:
            out.insert(out.index(step), action)
        else:
            out.append(action)
    return out


# ---- flags -----------------------------------------------------------------------------------

_FLAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
# The actions that write a path (:if-changed, :if-config-changed), and which argument it is.
_PATH_ARG = {"file": 0, "directory": 0, "remote-file": 0, "sed": 0, "symbolic-link": 1}


_FLAG_OPTIONS = frozenset(("if-flag", "if-changed", "if-config-changed", "flag-on-changed"))


@dataclass
class _Flags:
    raises: dict[int, list[str]] = field(default_factory=dict)   # step -> flags it raises
    waits: dict[int, list[str]] = field(default_factory=dict)    # step -> flags it acts on
    clears: dict[int, list[str]] = field(default_factory=dict)   # step -> flags it is last to read


def _option(action: Action, name: str) -> Any:
    for key, value in action.options:
        if _name(key) == name:
            return value
    return None


def _names(action: Action, option: str, what: str) -> list[str]:
    """The value of a flag-naming option: a name or a vector of names."""
    value = _option(action, option)
    if value is None:
        return []
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    names = []
    for v in values:
        v = _name(v)
        if not isinstance(v, str) or not (_FLAG_NAME.match(v) if what == "flag" else v):
            raise PalletError(
                f"{action.kind} :{option} takes " + (
                    "a flag name (letters, digits, '.', '_' and '-'; a string or a keyword)"
                    if what == "flag" else "a path") + f" or a vector of them, not {value!r}",
                action.span)
        names.append(v)
    return names


def _plan_flags(items: Sequence) -> _Flags:
    """Which step raises which flag and which reads it. :flag-on-changed names a flag; an
    action waiting with :if-flag needs an earlier step raising it, one waiting with :if-changed
    an earlier step writing each path (that step then raises the path's own flag), and
    :if-config-changed an earlier file step (each raises the flag `config-changed`). A flag
    nobody reads is not raised. Located errors for a wait nothing earlier can satisfy."""
    flags = _Flags()
    if not any(_name(key) in _FLAG_OPTIONS for item in items
               for action in (item.actions if isinstance(item, _PackageStep) else (item,))
               for key, _ in action.options):
        return flags  # the common case: no action raises or waits for a flag
    raised: dict[str, list[int]] = {}      # flag -> steps raising it, so far
    paths: dict[str, list[int]] = {}       # path -> steps writing it, so far
    readers: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        actions = item.actions if isinstance(item, _PackageStep) else [item]
        waits: list[str] = []
        for action in actions:
            for name in _names(action, "if-flag", "flag"):
                if name not in raised:
                    raise PalletError(f"{action.kind} :if-flag {name!r}: no earlier action of "
                                      f"this phase has :flag-on-changed {name!r} (flags are "
                                      "raised and read within one phase)", action.span)
                waits.append(name)
            for path in _names(action, "if-changed", "path"):
                if path not in paths:
                    raise PalletError(f"{action.kind} :if-changed: no earlier action of this "
                                      f"phase writes {path!r} (file, directory, symbolic-link, "
                                      "remote-file or sed with that exact path)", action.span)
                name = "changed-" + hashlib.sha256(path.encode()).hexdigest()[:16]
                for step in paths[path]:
                    _add(flags.raises, step, name)
                raised.setdefault(name, []).extend(paths[path])
                waits.append(name)
            if _option(action, "if-config-changed"):
                if not paths:
                    raise PalletError(f"{action.kind} :if-config-changed: no earlier action of "
                                      "this phase writes a file (file, directory, symbolic-link, "
                                      "remote-file or sed)", action.span)
                for step in sorted({s for steps in paths.values() for s in steps}):
                    _add(flags.raises, step, "config-changed")
                waits.append("config-changed")
        for name in waits:
            _add(flags.waits, index, name)
            readers.setdefault(name, []).append(index)
        for action in actions:
            for name in _names(action, "flag-on-changed", "flag"):
                _add(flags.raises, index, name)
                raised.setdefault(name, []).append(index)
            arg = _PATH_ARG.get(action.kind)
            if arg is not None and len(action.args) > arg and isinstance(action.args[arg], str):
                paths.setdefault(action.args[arg], []).append(index)
    for name, steps in readers.items():
        _add(flags.clears, steps[-1], name)
    for step, names in list(flags.raises.items()):
        flags.raises[step] = [n for n in names if n in readers]
    return flags


def _add(table: dict[int, list[str]], key: int, name: str) -> None:
    names = table.setdefault(key, [])
    if name not in names:
        names.append(name)


class _Renderer:
    def __init__(self, target: Target, read_file: ReadFile, library: ScriptLibrary):
        self.target = target
        self.read_file = read_file
        self.library = library
        self.powershell = target.shell == "powershell"
        self.steps: list[Step] = []
        self.files: dict[str, bytes] = {}
        self.bodies: dict[str, ScriptForms] = {}
        self.flags = _Flags()
        self.current = -1      # the index of the step being rendered (for its flags)
        self.carried: list[str] = []   # the shas of the files the next step installs
        self.secret_files: list[str] = []   # names of files whose content is secret

    # ---- helpers ---------------------------------------------------------------------------

    def add_step(self, action: Action, forms: list[Form], label: str | None = None,
                 sources: tuple[str, ...] = (), bodies: bool = False) -> None:
        forms = self.waiting(action, forms)
        forms += [_call("pallet-flag-raise", name, span=action.span)
                  for name in self.flags.raises.get(self.current, ())]
        calls = tuple(dict.fromkeys(name for form in forms for name in _calls_in(form)))
        for call in calls:
            self.require(_call(call), action)
        label = _one_line(label or action.label or _default_label(action))
        kind = "packages" if sources else action.kind
        self.steps.append(Step(len(self.steps) + 1, label, action.where, tuple(forms),
                               sources or (action.where,), bodies, kind, calls,
                               tuple(self.carried), action))
        self.carried = []

    def waiting(self, action: Action, forms: list[Form]) -> list[Form]:
        """The step's forms, run only when a flag it waits for is up (then the flags it is the
        last to read go down)."""
        waits = self.flags.waits.get(self.current)
        if not waits:
            return list(forms)
        tests = [_call("pallet-flagged", name, span=action.span) for name in waits]
        test = tests[0] if len(tests) == 1 else ListForm((Symbol("or"), *tests), action.span)
        clears = [_call("pallet-flag-clear", name, span=action.span)
                  for name in self.flags.clears.get(self.current, ())]
        return [ListForm((Symbol("when"), test, *forms, *clears), action.span)]

    def require(self, form: Form, action: Action) -> None:
        """The target must have a real implementation of every function the step calls
        (`:default` ones are POSIX shell, so they do not serve PowerShell)."""
        head = form.items[0] if isinstance(form, ListForm) and form.items else None
        if not isinstance(head, Symbol) or head.name not in self.library.functions:
            return
        try:
            impl = self.library.select(head.name, self.target, action.span)
        except PalletError:
            impl = None
        if impl is None or (self.powershell and not impl.specialisers):
            raise PalletError(f"{action.kind} is not available for {self.target.describe()}",
                              action.span)

    def refuse(self, action: Action, what: str) -> None:
        raise PalletError(f"{action.kind}: {what} is not available for "
                          f"{self.target.describe()}", action.span)

    def carry(self, data: bytes) -> _Hole:
        """The bundle carries `data` as files/<sha256>; the step names it by a placeholder
        (see Step.holes)."""
        sha = hashlib.sha256(data).hexdigest()
        self.files.setdefault(f"files/{sha}", data)
        self.carried.append(sha)
        return _Hole(_FILE_HOLE.format(len(self.carried)))

    def add_body(self, script: ScriptForms, span: Span | None = None) -> ListForm:
        """The bundle's next script body, and the form its step reaches it by,
        `~pallet-body-N` (each bundle's own bodies are lowered there)."""
        key = f"pallet-body-{len(self.bodies) + 1}"
        self.bodies[key] = script
        return ListForm((Symbol("unquote"), Symbol(key)), span)

    def carry_secret(self, data: bytes) -> str:
        """The bundle carries secret content as secrets/file-N: a name that tells nothing of
        it (a sha256 would: a short password is found from its checksum)."""
        name = f"secrets/file-{len(self.secret_files) + 1}"
        self.files[name] = data
        self.secret_files.append(name)
        return name

    def action(self, action: Action) -> None:
        method = _ACTIONS.get(action.kind)
        if method is None:
            raise PalletError(f"unknown action {action.kind!r}; the core actions are "
                              + ", ".join(sorted([*_ACTIONS, *_PACKAGE_KINDS])), action.span)
        _refuse_secrets(action)
        method(self, action)

    # ---- files -----------------------------------------------------------------------------

    def posix_attrs(self, action: Action, opts: dict) -> tuple[str, str, str]:
        owner, group, mode = _owner(action, opts, "owner"), _owner(action, opts, "group"), \
            _mode(action, opts.get("mode"))
        if self.powershell and (group or mode):
            self.refuse(action, ":group and :mode (Windows has owners and ACLs)")
        return owner, group, mode

    def file(self, action: Action) -> None:
        (path,) = _args(action, 1, "(file path & options)")
        opts = _options(action)
        kind = _choice(action, opts, "action", ("create", "delete", "touch"), "create")
        owner, group, mode = self.posix_attrs(action, opts)
        self.add_step(action, [_call("pallet-file", _string(action, path, "the path"), kind,
                                     owner, group, mode, span=action.span)])

    def directory(self, action: Action) -> None:
        (path,) = _args(action, 1, "(directory path & options)")
        opts = _options(action)
        kind = _choice(action, opts, "action", ("create", "delete"), "create")
        owner, group, mode = self.posix_attrs(action, opts)
        if self.powershell and opts.get("recursive"):
            self.refuse(action, ":recursive")
        self.add_step(action, [_call("pallet-directory", _string(action, path, "the path"), kind,
                                     owner, group, mode, bool(opts.get("recursive")),
                                     span=action.span)])

    def symbolic_link(self, action: Action) -> None:
        source, name = _args(action, 2, "(symbolic-link from name & options)")
        opts = _options(action)
        if _choice(action, opts, "action", ("create", "delete"), "create") == "delete":
            return self.add_step(action, [_call("pallet-file", _string(action, name, "the link name"),
                                                "delete", "", "", "", span=action.span)])
        self.add_step(action, [_call("pallet-symbolic-link", _string(action, source, "from"),
                                     _string(action, name, "the link name"),
                                     _owner(action, opts, "owner"), _owner(action, opts, "group"),
                                     bool(opts.get("force")), span=action.span)])

    def remote_file(self, action: Action) -> None:
        (path,) = _args(action, 1, "(remote-file path & options)")
        opts = _options(action)
        # :force is Pallet's: a file is always replaced whole.
        if _choice(action, opts, "action", ("create", "delete"), "create") == "delete":
            return self.add_step(action, [_call("pallet-file", _string(action, path, "the path"),
                                                "delete", "", "", "", span=action.span)])
        owner, group, mode = self.posix_attrs(action, opts)
        secret = _flag(action, opts, "secret", False)
        if has_secret(opts.get("content")) or has_secret(opts.get("values")):
            secret = True   # content made from a secret is secret
            revealed: list[str] = []
            opts = {**opts, **{k: reveal(opts[k], revealed) for k in ("content", "values")
                               if opts.get(k) is not None}}
            try:
                data, url, sha = content.remote_file_content(action, opts, self.read_file)
            except PalletError as exc:
                raise Redactor(revealed).error(exc) from None
        else:
            data, url, sha = content.remote_file_content(action, opts, self.read_file)
        overwrite = _flag(action, opts, "overwrite-changes", False)
        show_diff = _flag(action, opts, "diff", True) and not secret
        backups = opts.get("backups")
        if backups is not None and (isinstance(backups, bool) or not isinstance(backups, int)
                                    or backups < 0):
            raise PalletError(f"remote-file :backups is how many backups to keep (0 or more), "
                              f"not {backups!r}", action.span)
        if _flag(action, opts, "no-versioning", False):
            if backups:
                raise PalletError("remote-file: :no-versioning true keeps no backups; it does "
                                  f"not go with :backups {backups}", action.span)
            backups = 0
        if secret and data is not None:
            source = self.carry_secret(data)
            digest = Secret(hashlib.sha256(data).hexdigest())
            # bodies: lowered with the bundle's secret store (the digest is a secret)
            return self.add_step(action, [_call(
                "pallet-remote-file-secret", _string(action, path, "the path"), digest, source,
                owner, group, mode, overwrite, DEFAULT_BACKUPS if backups is None else backups,
                span=action.span)], bodies=True)
        if data is not None:
            sha = self.carry(data)
        self.add_step(action, [_call("pallet-remote-file", _string(action, path, "the path"), sha,
                                     url, owner, group, mode, overwrite,
                                     DEFAULT_BACKUPS if backups is None else backups, show_diff,
                                     span=action.span)])

    def sed(self, action: Action) -> None:
        path, replacements = _args(action, 2, '(sed path {"regex" "replacement" ...})')
        opts = _options(action)
        separator = opts.get("separator") or opts.get("seperator")
        words = content.sed_expressions(action, replacements, separator)
        self.add_step(action, [_call("pallet-sed", _string(action, path, "the path"), *words,
                                     span=action.span)])

    # ---- exec ------------------------------------------------------------------------------

    def exec_script(self, action: Action) -> None:
        opts = _options(action)
        args = [a for a in action.args if a is not None]  # (None, body): no name given
        names = [a for a in args if isinstance(a, str)]
        scripts = [a for a in args if isinstance(a, ScriptForms)]
        if len(names) + len(scripts) != len(args) or len(names) > 1:
            raise PalletError(f"{action.kind} takes an optional name and script forms",
                              action.span)
        body: list[Form] = []
        body += [self.add_body(script, action.span) for script in scripts]
        body.append(_call("pallet-changed"))
        skip: list[Form] = []
        if opts.get("creates") is not None:
            skip.append(ListForm((Symbol("file-exists?"),
                                  _word(_string(action, opts["creates"], ":creates"))), action.span))
        unless = opts.get("unless")
        if unless is not None:
            if not isinstance(unless, ScriptForms):
                raise PalletError(f"{action.kind} :unless takes a script test, such as "
                                  "(script (file-exists? \"/etc/x\"))", action.span)
            # the test's output is not the step's: only PALLET- lines on standard output
            skip.append(self.add_body(replace(unless, quiet=True), action.span))
        if skip:
            test = skip[0] if len(skip) == 1 else ListForm((Symbol("or"), *skip), action.span)
            forms: list[Form] = [ListForm((Symbol("when-not"), test, *body), action.span)]
        else:
            forms = body
        label = action.label or (f"{action.kind} {names[0]}" if names else action.kind)
        self.add_step(action, forms, label, bodies=True)

    # ---- users, groups, services ---------------------------------------------------------

    def user(self, action: Action) -> None:
        (name,) = _args(action, 1, "(user name & options)")
        opts = _options(action)
        verb = _choice(action, opts, "action", ("create", "manage", "remove"), "create")
        if verb == "remove":
            return self.add_step(action, [_call("pallet-user-remove",
                                                _string(action, name, "the user name"),
                                                span=action.span)])
        if self.powershell:
            for unsupported in ("home", "shell", "system", "create-home", "uid"):
                if opts.get(unsupported) is not None:
                    self.refuse(action, f":{unsupported}")
        groups = opts.get("groups") or ()
        if isinstance(groups, str):
            groups = [g for g in groups.split(",") if g]
        elif isinstance(groups, (set, frozenset)):  # a set: sorted, so output is reproducible
            groups = sorted(groups, key=str)
        create_home = opts.get("create-home")
        shell = opts.get("shell")
        if isinstance(_option(action, "shell"), Keyword):  # Pallet's :shell :bash
            shell = _SHELL_NAMES.get(shell)
            if shell is None:
                raise PalletError(f"user :shell {_option(action, 'shell')} is none of Pallet's shell "
                                  "names (" + " ".join(":" + k for k in _SHELL_NAMES) + "); give a "
                                  "path such as \"/bin/bash\"", action.span)
        self.add_step(action, [_call(
            "pallet-user", _string(action, name, "the user name"), opts.get("home"),
            shell, bool(opts.get("system")),
            "" if create_home is None else ("true" if create_home else "false"),
            opts.get("comment"), _id(action, opts.get("uid"), ":uid"),
            *(_string(action, g, "a group") for g in groups),
            span=action.span)])

    def group(self, action: Action) -> None:
        (name,) = _args(action, 1, "(group name & options)")
        opts = _options(action)
        name = _string(action, name, "the group name")
        if _choice(action, opts, "action", ("create", "manage", "remove"), "create") == "remove":
            return self.add_step(action, [_call("pallet-group-remove", name, span=action.span)])
        for unsupported in ("system", "gid"):
            if self.powershell and opts.get(unsupported):
                self.refuse(action, f":{unsupported}")
        self.add_step(action, [_call("pallet-group", name, bool(opts.get("system")),
                                     _id(action, opts.get("gid"), ":gid"), span=action.span)])

    def service(self, action: Action) -> None:
        (name,) = _args(action, 1, "(service name :action :start)")
        opts = _options(action)
        verb = _choice(action, opts, "action",
                       ("start", "stop", "restart", "reload", "enable", "disable"), "start")
        if self.powershell and verb == "reload":
            self.refuse(action, ":reload")
        form: Form = _call("pallet-service", _string(action, name, "the service name"), verb,
                           span=action.span)
        # :if-flag, :if-changed and :if-config-changed: see _plan_flags and waiting()
        self.add_step(action, [form])

    # ---- packages ----------------------------------------------------------------------------

    def package_step(self, step: _PackageStep) -> None:
        installs, removes = content.gather_packages(step.actions, self.target)
        first = step.actions[0]
        if self.target.packager == "pacman" and any(v for _, v in installs):
            self.refuse(first, "a :version pin (pacman installs the repository's version)")
        forms: list[Form] = []
        if self.powershell:
            forms += [_call("pallet-choco-remove", n, span=first.span) for n in removes]
            forms += [_call("pallet-choco-install", n, v, span=first.span) for n, v in installs]
        else:
            if removes:
                forms.append(_call("pallet-package-remove", *removes, span=first.span))
            if installs:
                forms.append(_call("pallet-package-install", *(w for pair in installs for w in pair),
                                   span=first.span))
        label = " ".join(["packages", *(n for n, _ in installs)]
                         + (["remove", *removes] if removes else []))
        sources = tuple(a.where for a in step.actions)
        if forms:
            self.add_step(first, forms, label, sources)
        if not self.powershell:  # the packager's functions, used inside the step
            for fn in ("pallet-package-installed", "pallet-package-add"):
                self.require(_call(fn), first)

    def package_manager(self, action: Action) -> None:
        (verb,) = _args(action, 1, "(package-manager :update)")
        if _name(verb) != "update":
            from pallet.compiler.core import describe
            raise PalletError(f"package-manager knows :update, not {describe(verb)}", action.span)
        _options(action)
        # Refreshing the package index changes no configuration: it reports ok.
        self.add_step(action, [_call("pallet-package-update", span=action.span)],
                      "package-manager update")

    def package_source(self, action: Action) -> None:
        (name,) = _args(action, 1, "(package-source name :apt {...})")
        opts = _options(action)
        name = _string(action, name, "the source name")
        source = content.package_source(action, name, opts, self.target)
        if source.line is not None:
            forms = [_call("pallet-package-source-line", source.path, source.line,
                           span=action.span)]
        else:
            sha = self.carry(source.data)
            forms = [_call("pallet-package-source", source.path, sha, source.key_url,
                           source.key_path, span=action.span)]
        self.require(_call("pallet-package-update"), action)
        self.add_step(action, forms)


def _publish(self: _Renderer, action: Action) -> None:
    """The body's output, read on the node, leaves as a PALLET-VALUE line; nothing changes."""
    name, body = _args(action, 2, "(publish :key script-forms...)")
    if not isinstance(body, ScriptForms):
        raise PalletError("publish takes script forms after the value's name", action.span)
    call = ListForm((Symbol("pallet-publish"), _word(_string(action, name, "the value's name")),
                     self.add_body(body, action.span)), action.span)
    self.add_step(action, [call], bodies=True)


_ACTIONS: dict[str, Callable[[_Renderer, Action], None]] = {
    "publish": _publish,
    "file": _Renderer.file, "directory": _Renderer.directory,
    "symbolic-link": _Renderer.symbolic_link, "remote-file": _Renderer.remote_file,
    "sed": _Renderer.sed, "exec-script": _Renderer.exec_script,
    "exec-checked-script": _Renderer.exec_script, "user": _Renderer.user,
    "group": _Renderer.group, "service": _Renderer.service,
    "package-manager": _Renderer.package_manager, "package-source": _Renderer.package_source,
}


def _default_label(action: Action) -> str:
    first = action.args[0] if action.args else ""
    if isinstance(first, (str, int, Keyword, Symbol)):
        return f"{action.kind} {_name(first)}"
    return action.kind
