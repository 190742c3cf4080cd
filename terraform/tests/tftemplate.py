"""A renderer for the subset of Terraform's template language (`templatefile`) that the
templates under terraform/ use, so that they can be rendered and checked without Terraform.

Supported: literal text with the `$${` and `%%{` escapes; `${ expr }` interpolations;
`%{ for X in EXPR }` / `%{ for K, V in EXPR }` ... `%{ endfor }`; `%{ if EXPR }` ...
`%{ else }` ... `%{ endif }`; the `~` strip markers on either side of a sequence (they consume
all the whitespace, newlines included, of the adjacent literal text, as Terraform does).

Expressions: variables with attribute (`a.b`) and index (`a[0]`) access, string (without
interpolation), number, `true`, `false` and `null` literals, `==`, `!=`, `!`, `&&`, `||`,
parentheses, and the functions jsonencode, indent, join, length, upper, lower, trimspace.
Anything else is an error, so a template that starts using more fails loudly here instead of
being checked wrongly.

`render(text, variables)` returns the output and the set of top-level variable names the
template referenced (on the paths it took and the ones it did not).
"""

from __future__ import annotations

import json
import re

__all__ = ["TemplateError", "render"]


class TemplateError(Exception):
    """The template is malformed, uses what this renderer does not support, or fails."""


# ---------------------------------------------------------------------------------------------
# Template tokens


def _skip_string(src: str, i: int) -> int:
    """Index just past the quoted string starting at src[i] == '"'."""
    j = i + 1
    while j < len(src):
        c = src[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            return j + 1
        j += 1
    raise TemplateError(f"unterminated string at offset {i}")


def _tokenize(src: str) -> list[tuple]:
    tokens: list[tuple] = []  # ("lit", text) | ("interp"|"dir", inner, strip_left, strip_right, offset)
    buf: list[str] = []
    i = 0
    while i < len(src):
        if src.startswith("$${", i):
            buf.append("${")
            i += 3
            continue
        if src.startswith("%%{", i):
            buf.append("%{")
            i += 3
            continue
        if src.startswith("${", i) or src.startswith("%{", i):
            kind = "interp" if src[i] == "$" else "dir"
            start = i
            j = i + 2
            strip_left = j < len(src) and src[j] == "~"
            if strip_left:
                j += 1
            depth = 0
            k = j
            while True:
                if k >= len(src):
                    raise TemplateError(f"unterminated template sequence at offset {start}")
                c = src[k]
                if c == '"':
                    k = _skip_string(src, k)
                    continue
                if c == "{":
                    depth += 1
                elif c == "}":
                    if depth == 0:
                        break
                    depth -= 1
                k += 1
            inner = src[j:k]
            strip_right = inner.rstrip().endswith("~")
            if strip_right:
                inner = inner.rstrip()[:-1]
            if buf:
                tokens.append(("lit", "".join(buf)))
                buf = []
            tokens.append((kind, inner.strip(), strip_left, strip_right, start))
            i = k + 1
            continue
        buf.append(src[i])
        i += 1
    if buf:
        tokens.append(("lit", "".join(buf)))
    # Strip markers consume the whitespace of the neighbouring literal text.
    for idx, tok in enumerate(tokens):
        if tok[0] == "lit":
            continue
        if tok[2] and idx > 0 and tokens[idx - 1][0] == "lit":
            tokens[idx - 1] = ("lit", tokens[idx - 1][1].rstrip(" \t\r\n"))
        if tok[3] and idx + 1 < len(tokens) and tokens[idx + 1][0] == "lit":
            tokens[idx + 1] = ("lit", tokens[idx + 1][1].lstrip(" \t\r\n"))
    return tokens


# ---------------------------------------------------------------------------------------------
# Expressions

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<num>\d+(?:\.\d+)?)
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
      | (?P<op>==|!=|&&|\|\||[.\[\](),!])
    )""",
    re.VERBOSE,
)

_FUNCTIONS = {
    "jsonencode": lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")),
    "indent": lambda n, s: s.replace("\n", "\n" + " " * int(n)),
    "join": lambda sep, items: sep.join(_to_text(x) for x in items),
    "length": lambda v: len(v),
    "upper": lambda s: s.upper(),
    "lower": lambda s: s.lower(),
    "trimspace": lambda s: s.strip(),
}


def _lex(expr: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unsupported expression syntax at {expr[pos:]!r} in {expr!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """Parses one expression into a small tree: ('lit', v) | ('var', name) | ('get', e, name)
    | ('index', e, e) | ('call', name, [e]) | ('not', e) | ('bin', op, e, e)."""

    def __init__(self, expr: str):
        self.expr = expr
        self.toks = _lex(expr)
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, value=None):
        tok = self.peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise TemplateError(f"expected {value!r} in {self.expr!r}")
        self.i += 1
        return tok

    def parse(self):
        node = self.or_()
        if self.i != len(self.toks):
            raise TemplateError(f"unexpected {self.peek()[1]!r} in {self.expr!r}")
        return node

    def or_(self):
        node = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            node = ("bin", "||", node, self.and_())
        return node

    def and_(self):
        node = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            node = ("bin", "&&", node, self.cmp())
        return node

    def cmp(self):
        node = self.unary()
        if self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            node = ("bin", op, node, self.unary())
        return node

    def unary(self):
        if self.peek() == ("op", "!"):
            self.take()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while True:
            if self.peek() == ("op", "."):
                self.take()
                kind, name = self.take()
                if kind not in ("ident", "num"):
                    raise TemplateError(f"bad attribute access in {self.expr!r}")
                node = ("get", node, name) if kind == "ident" else ("index", node, ("lit", int(name)))
            elif self.peek() == ("op", "["):
                self.take()
                idx = self.or_()
                self.take("]")
                node = ("index", node, idx)
            else:
                return node

    def primary(self):
        kind, value = self.take()
        if kind == "num":
            return ("lit", float(value) if "." in value else int(value))
        if kind == "str":
            if "${" in value or "%{" in value:
                raise TemplateError(f"string templates inside expressions are not supported: {value}")
            return ("lit", json.loads(value))
        if kind == "ident":
            if value == "null":
                return ("lit", None)
            if value in ("true", "false"):
                return ("lit", value == "true")
            if self.peek() == ("op", "("):
                self.take()
                args = []
                if self.peek() != ("op", ")"):
                    args.append(self.or_())
                    while self.peek() == ("op", ","):
                        self.take()
                        args.append(self.or_())
                self.take(")")
                if value not in _FUNCTIONS:
                    raise TemplateError(f"function {value}() is not supported by this renderer")
                return ("call", value, args)
            return ("var", value)
        if (kind, value) == ("op", "("):
            node = self.or_()
            self.take(")")
            return node
        raise TemplateError(f"unexpected {value!r} in {self.expr!r}")


def _variables_of(node, bound: set[str], out: set[str]) -> None:
    tag = node[0]
    if tag == "var":
        if node[1] not in bound:
            out.add(node[1])
    elif tag == "get":
        _variables_of(node[1], bound, out)
    elif tag == "index":
        _variables_of(node[1], bound, out)
        _variables_of(node[2], bound, out)
    elif tag == "call":
        for a in node[2]:
            _variables_of(a, bound, out)
    elif tag == "not":
        _variables_of(node[1], bound, out)
    elif tag == "bin":
        _variables_of(node[2], bound, out)
        _variables_of(node[3], bound, out)


def _eval(node, scope: dict):
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "var":
        if node[1] not in scope:
            raise TemplateError(f"vars map does not contain key {node[1]!r}")
        return scope[node[1]]
    if tag == "get":
        base = _eval(node[1], scope)
        if not isinstance(base, dict) or node[2] not in base:
            raise TemplateError(f"unsupported attribute {node[2]!r}")
        return base[node[2]]
    if tag == "index":
        base = _eval(node[1], scope)
        idx = _eval(node[2], scope)
        try:
            return base[idx]
        except (KeyError, IndexError, TypeError) as e:
            raise TemplateError(f"invalid index {idx!r}: {e}") from None
    if tag == "call":
        args = [_eval(a, scope) for a in node[2]]
        return _FUNCTIONS[node[1]](*args)
    if tag == "not":
        return not _truth(_eval(node[1], scope))
    if tag == "bin":
        op = node[1]
        if op == "&&":
            return _truth(_eval(node[2], scope)) and _truth(_eval(node[3], scope))
        if op == "||":
            return _truth(_eval(node[2], scope)) or _truth(_eval(node[3], scope))
        a, b = _eval(node[2], scope), _eval(node[3], scope)
        return (a == b) if op == "==" else (a != b)
    raise TemplateError(f"internal: unknown node {tag}")


def _truth(v) -> bool:
    if not isinstance(v, bool):
        raise TemplateError(f"a condition must be a bool, not {v!r}")
    return v


def _to_text(v) -> str:
    if v is None:
        raise TemplateError("cannot include a null value in a template")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, str):
        return v
    raise TemplateError(f"cannot include a {type(v).__name__} in a template: {v!r}")


# ---------------------------------------------------------------------------------------------
# Directives


def _parse_body(tokens, i, stop):
    """Parses tokens[i:] up to a directive in `stop`; returns (nodes, index of that directive)."""
    nodes = []
    while i < len(tokens):
        tok = tokens[i]
        if tok[0] == "lit":
            nodes.append(("text", tok[1]))
            i += 1
        elif tok[0] == "interp":
            nodes.append(("expr", _Parser(tok[1]).parse()))
            i += 1
        else:
            word = tok[1].split(None, 1)[0] if tok[1] else ""
            if word in stop:
                return nodes, i
            if word == "for":
                m = re.fullmatch(r"for\s+([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))?\s+in\s+(.+)", tok[1], re.S)
                if not m:
                    raise TemplateError(f"bad for directive: %{{{tok[1]}}}")
                body, j = _parse_body(tokens, i + 1, {"endfor"})
                if j >= len(tokens):
                    raise TemplateError("for without endfor")
                first, second, coll = m.group(1), m.group(2), _Parser(m.group(3)).parse()
                names = (first, second) if second else (None, first)
                nodes.append(("for", names, coll, body))
                i = j + 1
            elif word == "if":
                cond = _Parser(tok[1][2:]).parse()
                then, j = _parse_body(tokens, i + 1, {"else", "endif"})
                if j >= len(tokens):
                    raise TemplateError("if without endif")
                other = []
                if tokens[j][1].split()[0] == "else":
                    other, j = _parse_body(tokens, j + 1, {"endif"})
                    if j >= len(tokens):
                        raise TemplateError("if without endif")
                nodes.append(("if", cond, then, other))
                i = j + 1
            else:
                raise TemplateError(f"unexpected directive %{{{tok[1]}}}")
    if stop:
        raise TemplateError(f"missing %{{ {'/'.join(sorted(stop))} }}")
    return nodes, i


def _collect(nodes, bound: set[str], out: set[str]) -> None:
    for n in nodes:
        if n[0] == "expr":
            _variables_of(n[1], bound, out)
        elif n[0] == "for":
            _variables_of(n[2], bound, out)
            _collect(n[3], bound | {x for x in n[1] if x}, out)
        elif n[0] == "if":
            _variables_of(n[1], bound, out)
            _collect(n[2], bound, out)
            _collect(n[3], bound, out)


def _run(nodes, scope: dict, out: list[str]) -> None:
    for n in nodes:
        if n[0] == "text":
            out.append(n[1])
        elif n[0] == "expr":
            out.append(_to_text(_eval(n[1], scope)))
        elif n[0] == "for":
            coll = _eval(n[2], scope)
            key_name, value_name = n[1]
            if isinstance(coll, dict):
                items = sorted(coll.items())
            elif isinstance(coll, list):
                items = list(enumerate(coll))
            else:
                raise TemplateError(f"cannot iterate over {coll!r}")
            for k, v in items:
                inner = dict(scope)
                inner[value_name] = v
                if key_name:
                    inner[key_name] = k
                _run(n[3], inner, out)
        elif n[0] == "if":
            _run(n[2] if _truth(_eval(n[1], scope)) else n[3], scope, out)


def render(text: str, variables: dict) -> tuple[str, set[str]]:
    """Renders `text` with `variables`; returns (output, top-level variables referenced)."""
    nodes, _ = _parse_body(_tokenize(text), 0, set())
    used: set[str] = set()
    _collect(nodes, set(), used)
    missing = used - set(variables)
    if missing:
        raise TemplateError(f"the template uses variables that are not passed: {sorted(missing)}")
    out: list[str] = []
    _run(nodes, variables, out)
    return "".join(out), used
