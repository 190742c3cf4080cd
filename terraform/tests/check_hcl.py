#!/usr/bin/env python3
"""Static checks of terraform/ that need no Terraform binary and no cloud account.

Run by scripts/validate-terraform (with python-hcl2 on the path). Exits 1 listing every
problem found, 0 when there is none. The checks:

1. Every .tf file parses (python-hcl2); no tabs or trailing whitespace; `=` aligned as
   terraform fmt aligns it.
2. Every variable has a non-empty description and a type.
3. References resolve within their directory: var.X, local.X, module.M.OUTPUT, data.T.N and
   T.N (resources); every file() / templatefile() path exists. (A stand-in for part of
   `terraform validate`, which cannot run here.)
4. Module calls: the source directory exists, every argument is a variable of the module,
   every required variable of the module (no default) is passed, and `providers` is set.
   In the examples every resource and data source names its provider (no default one exists).
5. The example declares the required inputs a deployment needs (REQUIRED_EXAMPLE_VARIABLES),
   without defaults.
6. No security group ingress rule for the RPC or WAN port (or for all ports) is open to
   0.0.0.0/0 or ::/0, literally or through a variable whose validation does not refuse it.
7. The node configuration template (modules/region/templates/node.toml.tftpl), rendered with
   the production template's values and the module's defaults, parses as TOML and equals
   config/examples/production-template.toml: every top-level section, every key, every value.
   Optionally (MERIDIAN_BIN or a built binary found) `meridian config check` accepts it.
8. The cloud-init template renders to valid #cloud-config YAML under EC2's 16 KiB limit, embeds
   the rendered node configuration, packaging/systemd/meridian.service and the scripts
   unchanged, and passes exactly the MBOOT_* variables the bootstrap script requires.
9. The shell scripts under terraform/ pass `bash -n` (and shellcheck, when it is installed).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import hcl2  # python-hcl2 (scripts/validate-terraform puts the pinned one on the path)
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tftemplate import TemplateError, render  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "terraform"
MODULE = TF / "modules" / "region"
EXAMPLE = TF / "examples" / "three-regions"
PRODUCTION = REPO / "config" / "examples" / "production-template.toml"
UNIT = REPO / "packaging" / "systemd" / "meridian.service"

# What a deployment of the example cannot do without (and so must not default).
REQUIRED_EXAMPLE_VARIABLES = [
    "release_url",
    "release_sha256",
    "tls_secrets",
    "allowed_client_cidrs",
    "route53_zone_id",
    "api_domain_name",
]

# Variables of the region module that the example must pass for each region.
REQUIRED_MODULE_VARIABLES = [
    "region_name",
    "vpc_cidr",
    "allowed_client_cidrs",
    "wan_peer_cidrs",
    "wan_peers",
    "release_url",
    "release_sha256",
    "tls_secrets",
]

IGNORED_ROOTS = {"count", "each", "path", "self", "terraform"}
META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


# ---------------------------------------------------------------------------------------------
# Parsing


def unquote(v):
    if isinstance(v, str) and len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1]
    return v


def clean(obj):
    """python-hcl2's output without its bookkeeping keys, labels unquoted."""
    if isinstance(obj, dict):
        return {unquote(k): clean(v) for k, v in obj.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(obj, list):
        return [clean(x) for x in obj]
    return obj


def _strip_strings(line: str) -> str:
    """The line with the contents of quoted strings blanked out (brackets in them do not count)."""
    out, i, in_str = [], 0, False
    while i < len(line):
        c = line[i]
        if in_str:
            if c == "\\":
                out.append("  ")
                i += 2
                continue
            if c == '"':
                in_str = False
                out.append(c)
            else:
                out.append(" ")
        else:
            if c == '"':
                in_str = True
            elif c == "#" or line.startswith("//", i):
                break
            out.append(c)
        i += 1
    return "".join(out)


def check_alignment(f: Path, text: str) -> None:
    """terraform fmt's alignment of `=` (hclwrite formatCells): consecutive lines holding a
    single-line attribute assignment have their `=` in one column, one space after the longest
    name. A line whose value opens a multi-line expression ends the run."""
    chain: list[tuple[int, str, int]] = []  # (line number, lead, column of "=")

    def close():
        if chain:
            want = max(len(lead.rstrip()) for _, lead, _ in chain) + 1
            for n, lead, col in chain:
                if col != want:
                    problem(f"{rel(f)}:{n}: `=` at column {col + 1}, terraform fmt puts it at column {want + 1}")
        chain.clear()

    for n, line in enumerate(text.splitlines(), 1):
        code = _strip_strings(line)
        m = re.search(r"(?<![=!<>])=(?![=>])", code)
        if not m or not code[: m.start()].strip():
            close()
            continue
        rest = code[m.start():]
        depth = sum(rest.count(c) for c in "([{") - sum(rest.count(c) for c in ")]}")
        if depth != 0:
            close()
            continue
        chain.append((n, line[: m.start()], m.start()))
    close()


class Dir:
    """The declarations of one Terraform directory (root or module)."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[Path, dict] = {}
        self.texts: dict[Path, str] = {}
        self.variables: dict[str, dict] = {}
        self.locals: dict[str, object] = {}
        self.outputs: dict[str, dict] = {}
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.modules: dict[str, dict] = {}
        self.providers: list[dict] = []
        for f in sorted(path.glob("*.tf")):
            text = f.read_text()
            self.texts[f] = text
            check_alignment(f, text)
            for n, line in enumerate(text.splitlines(), 1):
                if "\t" in line:
                    problem(f"{rel(f)}:{n}: tab character (terraform fmt uses spaces)")
                if line != line.rstrip():
                    problem(f"{rel(f)}:{n}: trailing whitespace")
            try:
                with f.open() as fh:
                    parsed = clean(hcl2.load(fh))
            except Exception as e:  # noqa: BLE001 - any parse error is a problem to report
                problem(f"{rel(f)}: does not parse: {e}")
                continue
            self.files[f] = parsed
            for block in parsed.get("variable", []):
                for name, body in block.items():
                    self._add(self.variables, name, body, f, "variable")
            for block in parsed.get("locals", []):
                for name, value in block.items():
                    self._add(self.locals, name, value, f, "local")
            for block in parsed.get("output", []):
                for name, body in block.items():
                    self._add(self.outputs, name, body, f, "output")
            for block in parsed.get("module", []):
                for name, body in block.items():
                    self._add(self.modules, name, body, f, "module")
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in parsed.get(kind, []):
                    for rtype, named in block.items():
                        for rname, body in named.items():
                            self._add(target, (rtype, rname), body, f, kind)
            self.providers.extend(parsed.get("provider", []))

    @staticmethod
    def _add(table, key, value, f, what):
        if key in table:
            problem(f"{rel(f)}: {what} {key} is declared twice in the directory")
        table[key] = value

    def strings(self):
        """Every string value of every file, with its file."""
        for f, parsed in self.files.items():
            stack = [parsed]
            while stack:
                x = stack.pop()
                if isinstance(x, dict):
                    stack.extend(x.values())
                elif isinstance(x, list):
                    stack.extend(x)
                elif isinstance(x, str):
                    yield f, x


def tf_dirs() -> list[Path]:
    dirs = sorted({p.parent for p in TF.rglob("*.tf") if ".terraform" not in p.parts})
    if not dirs:
        problem("no .tf files under terraform/")
    return dirs


# ---------------------------------------------------------------------------------------------
# 2. Variables


def check_variables(d: Dir) -> None:
    for name, body in d.variables.items():
        desc = unquote(body.get("description", ""))
        if not isinstance(desc, str) or not desc.strip():
            problem(f"{rel(d.path)}: variable {name} has no description")
        if "type" not in body:
            problem(f"{rel(d.path)}: variable {name} has no type")


# ---------------------------------------------------------------------------------------------
# 3. References

REF_RES = {
    "var": re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)"),
    "local": re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)"),
    "module": re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?"),
    "data": re.compile(r"(?<![\w.])data\.([a-z][\w]*)\.([A-Za-z_][\w-]*)"),
    "resource": re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)"),
}
PATH_RE = re.compile(r'\b(file|templatefile)\(\s*"\$\{path\.module\}/([^"]+)"')


def expressions(s: str) -> list[str]:
    """The ${...} parts of a python-hcl2 string value (whole value when it is one)."""
    out = []
    i = 0
    while True:
        j = s.find("${", i)
        if j < 0:
            return out
        depth, k = 0, j + 2
        while k < len(s):
            if s[k] == "{":
                depth += 1
            elif s[k] == "}":
                if depth == 0:
                    break
                depth -= 1
            k += 1
        out.append(s[j + 2 : k])
        i = k + 1


def check_references(d: Dir, dirs: dict[Path, Dir]) -> None:
    for f, s in d.strings():
        for expr in expressions(s):
            for name in REF_RES["var"].findall(expr):
                if name not in d.variables:
                    problem(f"{rel(f)}: var.{name} is not declared in {rel(d.path)}")
            for name in REF_RES["local"].findall(expr):
                if name not in d.locals:
                    problem(f"{rel(f)}: local.{name} is not declared in {rel(d.path)}")
            for mod, out in REF_RES["module"].findall(expr):
                if mod not in d.modules:
                    problem(f"{rel(f)}: module.{mod} is not declared in {rel(d.path)}")
                    continue
                target = module_dir(d, mod)
                if out and target in dirs and out not in dirs[target].outputs:
                    problem(f"{rel(f)}: module.{mod}.{out}: {rel(target)} has no output {out}")
            for rtype, name in REF_RES["data"].findall(expr):
                if (rtype, name) not in d.data:
                    problem(f"{rel(f)}: data.{rtype}.{name} is not declared in {rel(d.path)}")
            stripped = REF_RES["data"].sub("", expr)
            for rtype, name in REF_RES["resource"].findall(stripped):
                if (rtype, name) not in d.resources:
                    problem(f"{rel(f)}: {rtype}.{name} is not declared in {rel(d.path)}")
    for f, text in d.texts.items():
        for func, p in PATH_RE.findall(text):
            if not (d.path / p).resolve().is_file():
                problem(f"{rel(f)}: {func}() of {p}: no such file")


def module_dir(d: Dir, name: str) -> Path:
    return (d.path / unquote(d.modules[name].get("source", ""))).resolve()


# ---------------------------------------------------------------------------------------------
# 4. Module calls and providers


def check_module_calls(d: Dir, dirs: dict[Path, Dir]) -> None:
    for name, body in d.modules.items():
        target = module_dir(d, name)
        if target not in dirs:
            problem(f"{rel(d.path)}: module {name}: source {unquote(body.get('source'))} has no .tf files")
            continue
        m = dirs[target]
        args = set(body) - META_ARGUMENTS
        for a in sorted(args - set(m.variables)):
            problem(f"{rel(d.path)}: module {name}: {a} is not a variable of {rel(target)}")
        required = {v for v, b in m.variables.items() if "default" not in b}
        for v in sorted(required - args):
            problem(f"{rel(d.path)}: module {name}: required variable {v} of {rel(target)} is not passed")
        if "providers" not in body:
            problem(f"{rel(d.path)}: module {name}: no providers map (the example has only aliased providers)")


def check_providers(d: Dir, is_module: bool) -> None:
    if is_module:
        if d.providers:
            problem(f"{rel(d.path)}: a reusable module must not configure providers")
        return
    for (rtype, rname), body in list(d.resources.items()) + list(d.data.items()):
        if "provider" not in body:
            problem(f"{rel(d.path)}: {rtype}.{rname} names no provider (only aliased providers exist)")


# ---------------------------------------------------------------------------------------------
# 5. The example's required inputs


def check_example_inputs(example: Dir, module: Dir) -> None:
    for v in REQUIRED_EXAMPLE_VARIABLES:
        if v not in example.variables:
            problem(f"{rel(example.path)}: required variable {v} is missing")
        elif "default" in example.variables[v]:
            problem(f"{rel(example.path)}: variable {v} must be required (no default)")
    for v in REQUIRED_MODULE_VARIABLES:
        if v not in module.variables:
            problem(f"{rel(module.path)}: variable {v} is missing")
        elif "default" in module.variables[v]:
            problem(f"{rel(module.path)}: variable {v} must be required (no default)")
    if not example.modules:
        problem(f"{rel(example.path)}: no module calls")


# ---------------------------------------------------------------------------------------------
# 6. Security group ingress


def port_bounds(body: dict, d: Dir):
    """(from, to) as numbers where resolvable, the port variable names they use, all-ports flag."""
    proto = str(unquote(body.get("ip_protocol", body.get("protocol", "")))).lower()
    all_ports = proto in ("-1", "all")
    names = set()
    nums = []
    for key in ("from_port", "to_port"):
        v = body.get(key)
        if isinstance(v, int):
            nums.append(v)
        elif isinstance(v, str):
            names.update(REF_RES["var"].findall(v))
            for var_name in REF_RES["var"].findall(v):
                default = d.variables.get(var_name, {}).get("default")
                if isinstance(default, int):
                    nums.append(default)
    return nums, names, all_ports


def sensitive_ports(d: Dir) -> set[int]:
    ports = set()
    for name in ("rpc_port", "wan_port"):
        default = d.variables.get(name, {}).get("default")
        if isinstance(default, int):
            ports.add(default)
    return ports or {7000, 7100}


def variable_refuses_world(d: Dir, name: str) -> bool:
    var = d.variables.get(name)
    if var is None:
        return False
    for v in var.get("validation", []):
        cond = str(v.get("condition", ""))
        if "0.0.0.0/0" in cond or re.search(r'split\("/",[^)]*\)\[1\]\)\s*>=\s*[1-9]', cond):
            return True
    return False


def check_ingress(d: Dir) -> None:
    targets = sensitive_ports(d)
    rules = []
    for (rtype, rname), body in d.resources.items():
        if rtype == "aws_vpc_security_group_ingress_rule":
            rules.append((f"{rtype}.{rname}", body))
        elif rtype == "aws_security_group_rule" and unquote(body.get("type")) == "ingress":
            rules.append((f"{rtype}.{rname}", body))
        elif rtype == "aws_security_group":
            for i, ing in enumerate(body.get("ingress", [])):
                rules.append((f"{rtype}.{rname}.ingress[{i}]", ing))
    for label, body in rules:
        nums, names, all_ports = port_bounds(body, d)
        sensitive = all_ports or bool(names & {"rpc_port", "wan_port"})
        if len(nums) == 2 and any(min(nums) <= p <= max(nums) for p in targets):
            sensitive = True
        if not sensitive:
            continue
        sources = [body.get(k) for k in ("cidr_ipv4", "cidr_ipv6", "cidr_blocks", "ipv6_cidr_blocks") if k in body]
        if "for_each" in body:
            sources.append(body["for_each"])
        text = json.dumps(sources)
        if "0.0.0.0/0" in text or "::/0" in text:
            problem(f"{rel(d.path)}: {label} opens the RPC/WAN port to the whole internet")
        for name in set(REF_RES["var"].findall(text)):
            if not variable_refuses_world(d, name):
                problem(
                    f"{rel(d.path)}: {label} takes its sources from var.{name}, whose validation "
                    "does not refuse 0.0.0.0/0"
                )


# ---------------------------------------------------------------------------------------------
# 7 and 8. Templates


def templatefile_calls(text: str):
    """(template path, top-level keys, nested objects {key: keys}) of each templatefile() call."""
    for m in re.finditer(r'templatefile\(\s*"\$\{path\.module\}/([^"]+)"\s*,\s*\{', text):
        start = m.end() - 1
        depth, i, in_str = 0, start, False
        while i < len(text):
            c = text[i]
            if in_str:
                if c == "\\":
                    i += 1
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        body = text[start + 1 : i]
        yield m.group(1), object_keys(body), nested_objects(body)


def object_keys(body: str) -> list[str]:
    keys, depth, in_str = [], 0, False
    for line in body.splitlines():
        if depth == 0:
            km = re.match(r"\s*([A-Za-z_]\w*)\s*=", line)
            if km:
                keys.append(km.group(1))
        for c in line:
            if c == '"':
                in_str = not in_str
            elif not in_str and c in "{[(":
                depth += 1
            elif not in_str and c in "}])":
                depth -= 1
    return keys


def nested_objects(body: str) -> dict[str, list[str]]:
    out = {}
    for m in re.finditer(r"(?m)^\s*([A-Za-z_]\w*)\s*=\s*\{\s*$", body):
        depth, i = 0, m.end() - 1
        while i < len(body):
            if body[i] == "{":
                depth += 1
            elif body[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        out[m.group(1)] = object_keys(body[m.end() : i])
    return out


def optional_defaults(type_expr: str) -> dict:
    """{attribute: default} of an object({a = optional(type, default), ...}) type."""
    out = {}
    for name, kind, default in re.findall(
        r'(\w+)\s*=\s*optional\(\s*(\w+)\s*,\s*("(?:[^"\\]|\\.)*"|[^)]+?)\s*\)', type_expr
    ):
        if kind == "string":
            out[name] = json.loads(default)
        elif kind == "number":
            out[name] = float(default) if "." in default else int(default)
        elif kind == "bool":
            out[name] = default == "true"
        else:
            out[name] = default
    return out


def diff(expected, actual, path="") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for k in sorted(set(expected) | set(actual)):
            p = f"{path}.{k}" if path else k
            if k not in actual:
                out.append(f"{p}: missing (production template has {expected[k]!r})")
            elif k not in expected:
                out.append(f"{p}: not in the production template")
            else:
                out.extend(diff(expected[k], actual[k], p))
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(diff(e, a, f"{path}[{i}]"))
        return out
    if expected != actual or type(expected) is not type(actual):
        return [f"{path}: {actual!r} (production template: {expected!r})"]
    return []


def find_meridian_binary() -> str | None:
    """MERIDIAN_BIN, else the newest built `meridian` under CARGO_TARGET_DIR or ./target."""
    explicit = os.environ.get("MERIDIAN_BIN")
    if explicit:
        return explicit
    found = []
    for target in filter(None, [os.environ.get("CARGO_TARGET_DIR"), str(REPO / "target")]):
        for profile in ("release", "debug"):
            p = Path(target) / profile / "meridian"
            if p.is_file() and os.access(p, os.X_OK):
                found.append(p)
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None


def config_check(binary: str, text: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "node.toml"
        cfg.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MERIDIAN_")}
        return subprocess.run([binary, "config", "check", str(cfg)], capture_output=True, text=True, env=env)


def check_templates(module: Dir) -> None:
    instances = MODULE / "instances.tf"
    text = instances.read_text()
    calls = {path: (keys, nested) for path, keys, nested in templatefile_calls(text)}
    node_tpl, cloud_tpl = "templates/node.toml.tftpl", "templates/cloud-init.yaml.tftpl"
    for t in (node_tpl, cloud_tpl):
        if t not in calls:
            problem(f"{rel(instances)}: no templatefile() call of {t}")
    if problems:
        return

    before = len(problems)
    production = tomllib.loads(PRODUCTION.read_text())
    locals_ = {k: unquote(v) for k, v in module.locals.items() if isinstance(v, str)}
    settings = optional_defaults(str(module.variables["cluster_settings"]["type"]))
    port = {p: module.variables[p]["default"] for p in ("http_port", "rpc_port", "wan_port")}
    prod_peers = production["wan"]["peers"]

    # 7. The node configuration, rendered with the production template's instance values.
    node_vars = {
        "node_id": production["node"]["id"],
        "region": production["node"]["region"],
        "data_dir": locals_.get("data_dir"),
        "tls_dir": locals_.get("tls_dir"),
        "settings": settings,
        "phi_threshold": "%.1f" % settings.get("phi_threshold", 0),
        "seeds": production["cluster"]["seeds"],
        "http_listen": f"0.0.0.0:{port['http_port']}",
        "rpc_listen": f"0.0.0.0:{port['rpc_port']}",
        "wan_listen": f"0.0.0.0:{port['wan_port']}",
        "advertise": production["rpc"]["advertise"],
        "wan_peers": [dict(p) for p in prod_peers],
        "keyspaces": [{"consistency": None, **k} for k in production["keyspaces"]],
        "api_tokens": [{"rate_per_sec": None, "burst": None, **t} for t in production["auth"]["tokens"]],
        "log_level": production["telemetry"]["log_level"],
        "otlp_endpoint": production["telemetry"].get("otlp_endpoint"),
    }
    keys, _ = calls[node_tpl]
    if set(keys) != set(node_vars):
        problem(
            f"{rel(instances)}: templatefile({node_tpl}) passes {sorted(keys)}; this check knows "
            f"{sorted(node_vars)}: update check_hcl.py together with the template"
        )
        return
    try:
        node_toml, used = render((MODULE / node_tpl).read_text(), node_vars)
    except TemplateError as e:
        problem(f"{node_tpl}: does not render: {e}")
        return
    for unused in sorted(set(keys) - used):
        problem(f"{rel(instances)}: {unused} is passed to {node_tpl} but never used")
    try:
        rendered = tomllib.loads(node_toml)
    except tomllib.TOMLDecodeError as e:
        problem(f"{node_tpl}: the rendered configuration is not TOML: {e}\n{node_toml}")
        return
    for section in production:
        if section not in rendered:
            problem(f"{node_tpl}: the rendered configuration has no [{section}] (production template has it)")
    for d in diff(production, rendered):
        problem(f"{node_tpl}: rendered configuration differs from {rel(PRODUCTION)}: {d}")

    binary = find_meridian_binary()
    if binary is None:
        print("check_hcl: no meridian binary (MERIDIAN_BIN, or CARGO_TARGET_DIR/{release,debug}/meridian): "
              "skipping `meridian config check` of the rendered configuration")
    elif config_check(binary, PRODUCTION.read_text()).returncode != 0:
        # A binary built from an older tree: its verdict says nothing about this one.
        print(f"check_hcl: {binary} refuses the production template itself (built from another tree?): "
              "skipping `meridian config check` of the rendered configuration")
    else:
        r = config_check(binary, node_toml)
        if r.returncode != 0:
            problem(f"{node_tpl}: `meridian config check` refuses the rendered configuration: {r.stderr.strip()}")
        else:
            print(f"check_hcl: meridian config check ({binary}): {r.stdout.strip()}")

    # 8. cloud-init.
    keys, nested = calls[cloud_tpl]
    bootstrap = (MODULE / "files" / "meridian-bootstrap.sh").read_text()
    install = (MODULE / "files" / "meridian-install.sh").read_text()
    unit = UNIT.read_text()
    required_env = re.findall(r'^: "\$\{(MBOOT_\w+):\?\}"', bootstrap, re.M)
    used_env = set(re.findall(r"\$\{?(MBOOT_\w+)", bootstrap))
    env_keys = nested.get("bootstrap_env", [])
    if set(env_keys) != set(required_env):
        problem(
            f"{rel(instances)}: bootstrap_env passes {sorted(env_keys)} but meridian-bootstrap.sh "
            f"requires {sorted(required_env)}"
        )
    for v in sorted(used_env - set(required_env)):
        problem(f"meridian-bootstrap.sh uses {v} without requiring it (': \"${{{v}:?}}\"')")
    arn = "arn:aws:secretsmanager:ap-southeast-1:123456789012:secret:meridian/ap-southeast/node12.key-AbCdEf"
    sample_env = {k: arn for k in env_keys}
    sample_env["MBOOT_RELEASE_URL"] = "https://github.com/example-org/meridian/releases/download/v0.1.0/meridian-0.1.0-x86_64-unknown-linux-gnu.tar.gz"
    cloud_vars = {
        "node_id": node_vars["node_id"],
        "region": node_vars["region"],
        "node_config": node_toml,
        "systemd_unit": unit,
        "install_script": install,
        "bootstrap_script": bootstrap,
        "bootstrap_env": sample_env,
    }
    if set(keys) != set(cloud_vars):
        problem(
            f"{rel(instances)}: templatefile({cloud_tpl}) passes {sorted(keys)}; this check knows "
            f"{sorted(cloud_vars)}: update check_hcl.py together with the template"
        )
        return
    try:
        user_data, used = render((MODULE / cloud_tpl).read_text(), cloud_vars)
    except TemplateError as e:
        problem(f"{cloud_tpl}: does not render: {e}")
        return
    for unused in sorted(set(keys) - used):
        problem(f"{rel(instances)}: {unused} is passed to {cloud_tpl} but never used")
    size = len(user_data.encode())
    if "base64gzip(local.user_data" in text:
        size = len(gzip.compress(user_data.encode(), compresslevel=9, mtime=0))
    if size > 16384:
        problem(f"{cloud_tpl}: rendered user data is {size} bytes as sent, over EC2's 16384-byte limit")
    if not user_data.startswith("#cloud-config\n"):
        problem(f"{cloud_tpl}: the user data must start with '#cloud-config'")
    try:
        doc = yaml.safe_load(user_data)
    except yaml.YAMLError as e:
        problem(f"{cloud_tpl}: the rendered user data is not YAML: {e}")
        return
    files = {f.get("path"): f for f in doc.get("write_files", [])}
    expected = {
        "/etc/meridian/node.toml": node_toml,
        "/etc/systemd/system/meridian.service": unit,
        "/usr/local/sbin/meridian-install": install,
        "/usr/local/sbin/meridian-bootstrap": bootstrap,
    }
    for path, content in expected.items():
        if path not in files:
            problem(f"{cloud_tpl}: writes no {path}")
        elif files[path].get("content") != content:
            problem(f"{cloud_tpl}: {path} is not written unchanged (indentation of the embedded file?)")
    env_file = files.get("/etc/meridian/bootstrap.env", {}).get("content", "")
    written = dict(re.findall(r"^(MBOOT_\w+)='([^']*)'$", env_file, re.M))
    if written != sample_env:
        problem(f"{cloud_tpl}: /etc/meridian/bootstrap.env does not hold exactly the bootstrap_env values")
    if ["/usr/local/sbin/meridian-bootstrap"] not in doc.get("runcmd", []):
        problem(f"{cloud_tpl}: runcmd does not run /usr/local/sbin/meridian-bootstrap")
    for pkg in ("awscli", "curl", "xfsprogs"):
        if pkg not in doc.get("packages", []):
            problem(f"{cloud_tpl}: package {pkg} (needed by meridian-bootstrap) is not installed")
    if len(problems) == before:
        print(f"check_hcl: rendered node configuration equals {rel(PRODUCTION)} "
              f"({len(production)} sections); user data {size} bytes as sent")


# ---------------------------------------------------------------------------------------------
# 9. Shell scripts


def check_scripts() -> None:
    scripts = sorted(p for p in TF.rglob("*.sh") if ".terraform" not in p.parts)
    for s in scripts:
        r = subprocess.run(["bash", "-n", str(s)], capture_output=True, text=True)
        if r.returncode != 0:
            problem(f"{rel(s)}: bash -n: {r.stderr.strip()}")
        if not os.access(s, os.X_OK):
            problem(f"{rel(s)}: not executable")
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", "--severity=warning", *map(str, scripts)], capture_output=True, text=True)
        if r.returncode != 0:
            problem(f"shellcheck:\n{r.stdout.strip()}")
    else:
        print("check_hcl: shellcheck not installed: only `bash -n` on the scripts")


# ---------------------------------------------------------------------------------------------


def main() -> int:
    dirs = {p.resolve(): Dir(p) for p in tf_dirs()}
    module = dirs.get(MODULE.resolve())
    example = dirs.get(EXAMPLE.resolve())
    if module is None or example is None:
        problem("terraform/modules/region and terraform/examples/three-regions must both exist")
    for path, d in dirs.items():
        is_module = TF / "modules" in path.parents
        check_variables(d)
        check_references(d, dirs)
        check_module_calls(d, dirs)
        check_providers(d, is_module)
        check_ingress(d)
    if module is not None and example is not None:
        check_example_inputs(example, module)
        if not problems:
            check_templates(module)
    check_scripts()
    if problems:
        print(f"check_hcl: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    nvars = sum(len(d.variables) for d in dirs.values())
    nres = sum(len(d.resources) for d in dirs.values())
    print(f"check_hcl: OK: {len(dirs)} directories, {nvars} variables, {nres} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
