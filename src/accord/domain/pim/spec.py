"""Rule sets as data: channel dialects and compliance packs, read from TOML or JSON.

A file declares one rule set::

    name = "amazon"            # the dialect name channels refer to, or the pack name
    kind = "dialect"           # or "pack"
    description = "..."
    [scope]                    # packs: which channels it applies to when a channel does not list its packs
    countries = ["@EU", "GB"]  # ISO codes; "@EU" = the 27 EU member states, "@UK" = GB
    regions = []               # channel region names
    [[rules]]
    id = "title-bytes"         # unique within the file
    check = "max_len_bytes"    # a word of the vocabulary below
    attribute = "title"        # a role; the catalogue maps roles to attribute codes (default: same code)
    max = 200
    severity = "error"         # or "warning"
    when = { attribute = "prop65", equals = true }   # optional; ops: equals, not_equals, in, not_in, present
                                                     # (an absent value fails equals/in, passes not_*;
                                                     # "@EU"/"@UK" in a list stand for their country codes)
    countries = ["US"]         # optional: only on channels in these countries

The vocabulary (``check``) and its parameters are listed in :data:`VOCABULARY`; one engine
(:mod:`accord.domain.pim.readiness`) interprets all of them.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from accord.domain.errors import InvalidInput, NotFound
from accord.domain.pim.channel import EU_COUNTRIES, UK_COUNTRIES, ChannelContext


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class RuleSetKind(StrEnum):
    DIALECT = "dialect"
    PACK = "pack"


# check word → (required parameters, optional parameters). ``attribute``/``attributes`` are roles.
VOCABULARY: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    "required": (frozenset({"attribute"}), frozenset({"locale_match"})),
    "required_any": (frozenset({"attributes"}), frozenset()),
    "required_if_category": (frozenset({"attributes"}), frozenset({"categories", "category_tags"})),
    "max_len_chars": (frozenset({"attribute", "max"}), frozenset()),
    "min_len_chars": (frozenset({"attribute", "min"}), frozenset()),
    "max_len_bytes": (frozenset({"attribute", "max"}), frozenset()),
    "max_items": (frozenset({"attribute", "max"}), frozenset()),
    "min_items": (frozenset({"attribute", "min"}), frozenset()),
    "min_pixels": (frozenset({"attribute", "min"}), frozenset()),
    "one_of": (frozenset({"attribute", "values"}), frozenset()),
    "regex": (frozenset({"attribute", "pattern"}), frozenset()),
    # compliance words backed by small functions (accord.domain.pim.compliance)
    "gtin_check_digit": (frozenset({"attribute"}), frozenset()),
    "price_in_currency": (frozenset({"attribute"}), frozenset()),
    "vat_inclusive_price": (frozenset({"attribute"}), frozenset()),
    "omnibus_prior_price": (frozenset({"attribute", "prior_price"}), frozenset({"compare_at", "sale_price"})),
    "translations_complete": (frozenset(), frozenset()),
    "channel_required": (frozenset(), frozenset()),
}
_COMMON = frozenset({"id", "check", "severity", "message", "when", "countries", "description"})
_CONDITION_OPS = frozenset({"equals", "not_equals", "in", "not_in", "present"})
LOCALE_MATCHES = frozenset({"fallback", "language", "exact"})
_INT_PARAMS = frozenset({"max", "min"})
_ROLE_LIST_PARAMS = frozenset({"attributes", "categories", "category_tags"})
_RULE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def expand_countries(items: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for c in items:
        if c == "@EU":
            out |= EU_COUNTRIES
        elif c == "@UK":
            out |= UK_COUNTRIES
        elif len(c) == 2 and c.isalpha() and c.isupper():
            out.add(c)
        else:
            raise InvalidInput(f"country must be an ISO alpha-2 code, '@EU' or '@UK', got {c!r}")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Condition:
    attribute: str  # role
    op: str
    operand: object = None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    check: str
    severity: Severity
    attribute: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    when: Condition | None = None
    countries: frozenset[str] | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    countries: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()

    def matches(self, channel: ChannelContext) -> bool:
        if self.countries and channel.country not in self.countries:
            return False
        return not self.regions or channel.region in self.regions


@dataclass(frozen=True)
class RuleSet:
    name: str
    kind: RuleSetKind
    rules: tuple[RuleSpec, ...]
    scope: Scope = field(default_factory=Scope)
    description: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class SourceLines:
    """Where things start in a rule file's text (1-based lines), so errors can say ``file:line``."""

    keys: Mapping[str, int] = field(default_factory=dict)  # top-level key or table → its line
    rules: tuple[int, ...] = ()  # the n-th rule → its line

    def key(self, source: str, key: str) -> str:
        line = self.keys.get(key)
        return source if line is None else f"{source}:{line}"

    def rule(self, source: str, index: int) -> str:
        if index < len(self.rules):
            return f"{source}:{self.rules[index]}"
        return self.key(source, "rules")


_TOML_TABLE_RE = re.compile(r"^\s*\[\s*([A-Za-z_]+)\s*\]")
_TOML_RULE_RE = re.compile(r"^\s*\[\[\s*rules\s*\]\]")
_TOML_KEY_RE = re.compile(r"^\s*([A-Za-z_]+)\s*=")


def source_lines(text: str, fmt: str = "toml") -> SourceLines:
    """Lines of the top-level keys and of each rule in a TOML or JSON rule file (best effort: used for
    messages only)."""
    keys: dict[str, int] = {}
    rules: list[int] = []
    if fmt == "toml":
        table: str | None = None
        for n, row in enumerate(text.splitlines(), 1):
            if _TOML_RULE_RE.match(row):
                rules.append(n)
                table = "rules"
                keys.setdefault("rules", n)
            elif m := _TOML_TABLE_RE.match(row):
                table = m.group(1)
                keys.setdefault(table, n)
            elif table is None and (m := _TOML_KEY_RE.match(row)):
                keys.setdefault(m.group(1), n)
        return SourceLines(keys, tuple(rules))
    # JSON: a small scanner that follows strings and nesting
    line, depth, in_str, esc = 1, 0, False, False
    buf: list[str] = []
    last = ""
    key1: str | None = None
    rules_at: int | None = None
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                last = "".join(buf)
            else:
                buf.append(ch)
            continue
        if ch == '"':
            in_str, buf = True, []
        elif ch == ":" and depth == 1:
            key1 = last
            keys.setdefault(last, line)
        elif ch in "{[":
            depth += 1
            if ch == "[" and depth == 2 and key1 == "rules":
                rules_at = 2
            elif ch == "{" and rules_at is not None and depth == 3:
                rules.append(line)
        elif ch in "}]":
            if ch == "]" and depth == rules_at:
                rules_at = None
            depth -= 1
    return SourceLines(keys, tuple(rules))


def parse_ruleset(data: Mapping[str, Any], source: str = "<data>", lines: SourceLines | None = None) -> RuleSet:
    """Build a rule set from parsed TOML/JSON; every mistake is an :class:`InvalidInput` naming the rule (and,
    with ``lines``, the file line it starts on)."""
    lines = lines or SourceLines()
    where = lines.key(source, "name")
    name = data.get("name")
    if not isinstance(name, str) or not _RULE_ID_RE.fullmatch(name):
        raise InvalidInput(f"{where}: 'name' must be a short identifier, got {name!r}")
    try:
        kind = RuleSetKind(str(data.get("kind")))
    except ValueError:
        where = f"{lines.key(source, 'kind')} ({name})"
        raise InvalidInput(f"{where}: 'kind' must be 'dialect' or 'pack', got {data.get('kind')!r}") from None
    unknown_top = set(data) - {"name", "kind", "description", "scope", "rules"}
    if unknown_top:
        where = f"{lines.key(source, sorted(unknown_top)[0])} ({name})"
        raise InvalidInput(f"{where}: unknown keys {sorted(unknown_top)}")
    scope_raw = data.get("scope") or {}
    where = f"{lines.key(source, 'scope')} ({name})"
    if not isinstance(scope_raw, Mapping) or set(scope_raw) - {"countries", "regions"}:
        raise InvalidInput(f"{where}: 'scope' takes 'countries' and 'regions'")
    scope = Scope(
        expand_countries(_str_list(scope_raw.get("countries", []), f"{where} scope.countries")),
        frozenset(_str_list(scope_raw.get("regions", []), f"{where} scope.regions")),
    )
    rules_raw = data.get("rules", [])
    if not isinstance(rules_raw, list):
        raise InvalidInput(f"{lines.key(source, 'rules')} ({name}): 'rules' must be a list of tables")
    rules: list[RuleSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(rules_raw):
        where = f"{lines.rule(source, i)} ({name})"
        rule = _parse_rule(raw, f"{where} rule #{i + 1}")
        if rule.id in seen:
            raise InvalidInput(f"{where}: two rules have id {rule.id!r}")
        seen.add(rule.id)
        rules.append(rule)
    description = data.get("description", "")
    return RuleSet(name, kind, tuple(rules), scope, str(description), source)


def _parse_rule(raw: object, where: str) -> RuleSpec:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: a rule must be a table")
    check = raw.get("check")
    if check not in VOCABULARY:
        raise InvalidInput(f"{where}: unknown check {check!r}; known: {', '.join(sorted(VOCABULARY))}")
    assert isinstance(check, str)
    rule_id = raw.get("id") or f"{check}.{raw.get('attribute', 'all')}"
    if not isinstance(rule_id, str) or not _RULE_ID_RE.fullmatch(rule_id):
        raise InvalidInput(f"{where}: bad rule id {rule_id!r}")
    where = f"{where} ({rule_id})"
    required, optional = VOCABULARY[check]
    params = {k: v for k, v in raw.items() if k not in _COMMON}
    missing = required - set(params)
    if missing:
        raise InvalidInput(f"{where}: {check} needs {', '.join(sorted(missing))}")
    extra = set(params) - required - optional
    if extra:
        raise InvalidInput(f"{where}: {check} does not take {', '.join(sorted(extra))}")
    for k, v in params.items():
        if k in _INT_PARAMS and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise InvalidInput(f"{where}: {k} must be a non-negative integer, got {v!r}")
        if k in _ROLE_LIST_PARAMS and not _str_list(v, f"{where} {k}"):
            raise InvalidInput(f"{where}: {k} must not be empty")
        if k in ("attribute", "prior_price", "compare_at", "sale_price") and (not isinstance(v, str) or not v):
            raise InvalidInput(f"{where}: {k} must be an attribute role name")
    if check == "required_if_category" and not (params.get("categories") or params.get("category_tags")):
        raise InvalidInput(f"{where}: required_if_category needs categories or category_tags")
    if "locale_match" in params and params["locale_match"] not in LOCALE_MATCHES:
        raise InvalidInput(f"{where}: locale_match must be one of {sorted(LOCALE_MATCHES)}")
    if "values" in params and not isinstance(params["values"], list):
        raise InvalidInput(f"{where}: values must be a list")
    if "pattern" in params:
        if not isinstance(params["pattern"], str):
            raise InvalidInput(f"{where}: pattern must be a string")
        try:
            re.compile(params["pattern"])
        except re.error as exc:
            raise InvalidInput(f"{where}: bad pattern: {exc}") from None
    try:
        severity = Severity(raw.get("severity", "error"))
    except ValueError:
        raise InvalidInput(f"{where}: severity must be 'error' or 'warning'") from None
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise InvalidInput(f"{where}: message must be a string")
    countries = raw.get("countries")
    return RuleSpec(
        id=rule_id,
        check=check,
        severity=severity,
        attribute=params.pop("attribute", None),
        params=params,
        when=_parse_condition(raw.get("when"), where),
        countries=None if countries is None else expand_countries(_str_list(countries, f"{where} countries")),
        message=message,
    )


def _parse_condition(raw: object, where: str) -> Condition | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("attribute"), str):
        raise InvalidInput(f"{where}: 'when' needs an attribute and one of {sorted(_CONDITION_OPS)}")
    ops = set(raw) - {"attribute"}
    if len(ops) != 1 or not ops <= _CONDITION_OPS:
        raise InvalidInput(f"{where}: 'when' needs exactly one of {sorted(_CONDITION_OPS)}")
    op = ops.pop()
    operand = raw[op]
    if op in ("in", "not_in") and not isinstance(operand, list):
        raise InvalidInput(f"{where}: 'when.{op}' takes a list")
    if op == "present" and not isinstance(operand, bool):
        raise InvalidInput(f"{where}: 'when.present' takes true or false")
    if isinstance(operand, list):
        groups = {"@EU": EU_COUNTRIES, "@UK": UK_COUNTRIES}
        expanded: list[object] = []
        for x in operand:
            expanded.extend(sorted(groups[x]) if isinstance(x, str) and x in groups else [x])
        operand = tuple(expanded)
    return Condition(raw["attribute"], op, operand)


def _str_list(v: object, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise InvalidInput(f"{where}: expected a list of names")
    return list(v)


_TOML_AT_LINE_RE = re.compile(r"\(at line (\d+)")


def load_ruleset_text(text: str, source: str = "<text>", fmt: str = "toml") -> RuleSet:
    """Parse one rule file's text; a mistake is an :class:`InvalidInput` starting ``source:line:``."""
    if fmt not in ("toml", "json"):
        raise InvalidInput(f"{source}: a rule file is .toml or .json, not {fmt!r}")
    try:
        data = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_AT_LINE_RE.search(str(exc))
        where = f"{source}:{m.group(1)}" if m else source
        raise InvalidInput(f"{where}: cannot parse toml: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source}:{exc.lineno}: cannot parse json: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}:1: expected a table at the top")
    return parse_ruleset(data, source, source_lines(text, fmt))


def ruleset_format(path: Path) -> str:
    """``json`` for a ``.json`` file, else ``toml``."""
    return "json" if path.suffix.lower() == ".json" else "toml"


def load_ruleset_file(path: Path) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror}") from None
    return load_ruleset_text(text, str(path), ruleset_format(path))


def load_ruleset_dir(path: Path) -> tuple[RuleSet, ...]:
    """Every ``*.toml`` / ``*.json`` file in ``path`` (sorted by name)."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".toml", ".json") and p.is_file())
    return tuple(load_ruleset_file(p) for p in files)


def builtin_rulesets() -> tuple[RuleSet, ...]:
    """The dialects and packs shipped in ``accord/domain/pim/rules/`` (read when called, never at import)."""
    root = resources.files("accord.domain.pim").joinpath("rules")
    out: list[RuleSet] = []
    for sub in ("dialects", "packs"):
        folder = root.joinpath(sub)
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_file() and entry.name.endswith((".toml", ".json")):
                fmt = "json" if entry.name.endswith(".json") else "toml"
                out.append(load_ruleset_text(entry.read_text(encoding="utf-8"), f"builtin:{sub}/{entry.name}", fmt))
    return tuple(out)


@dataclass(frozen=True)
class RuleLibrary:
    dialects: Mapping[str, RuleSet]
    packs: Mapping[str, RuleSet]

    @classmethod
    def of(cls, rulesets: Iterable[RuleSet]) -> RuleLibrary:
        return cls({}, {}).with_rulesets(*rulesets)

    @classmethod
    def builtin(cls) -> RuleLibrary:
        return cls.of(builtin_rulesets())

    def with_rulesets(self, *rulesets: RuleSet) -> RuleLibrary:
        """A copy where these rule sets are added, replacing any of the same kind and name."""
        dialects = dict(self.dialects)
        packs = dict(self.packs)
        for rs in rulesets:
            (dialects if rs.kind is RuleSetKind.DIALECT else packs)[rs.name] = rs
        return RuleLibrary(dialects, packs)

    def dialect(self, name: str) -> RuleSet:
        rs = self.dialects.get(name)
        if rs is None:
            raise NotFound("dialect", name)
        return rs

    def packs_for(self, channel: ChannelContext) -> tuple[RuleSet, ...]:
        if channel.packs is None:
            return tuple(p for _, p in sorted(self.packs.items()) if p.scope.matches(channel))
        out: list[RuleSet] = []
        for name in channel.packs:
            p = self.packs.get(name)
            if p is None:
                raise NotFound("compliance pack", name)
            out.append(p)
        return tuple(out)
