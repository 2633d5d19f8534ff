"""Scope rules: parsing, coverage, overlap, effective permission and delegation checks.

Pure logic over ``protocol.messages.ScopeRule``: nothing here opens a file or a socket.
Only ``parse_scope_arg``, ``normalize_rule`` and ``default_root_scope`` touch the file
system, to resolve symlinks (``os.path.realpath``).

Every other function compares paths as strings, lexically: ``/a/b`` is inside ``/a``
but not inside ``/a/bc``, trailing slashes and ``..`` are normalised away. Symlinks are
not followed there, so callers pass rules through ``normalize_rule`` (or build them with
``parse_scope_arg``) before any check.

The path set of a rule:

- recursive: the target and everything beneath it;
- non-recursive: the target and its direct children (not their contents).

Permissions are ordered ``read`` < ``write``: a write rule also grants read.

A pod's *effective* scope is its own rules minus what it delegated for write: wherever
a live child (or grandchild: ``held`` maps every live registry entry to its rules) holds
write, the pod itself only reads. When the child is gone and its entry leaves ``held``,
write comes back.
"""

from __future__ import annotations

import os.path
from collections.abc import Iterator, Mapping, Sequence

import attrs

from podd.core import scope_arg
from protocol.errors import ScopeNotSubset, WriteConflict
from protocol.messages import Permission, ScopeRule

__all__ = [
    "check_delegation",
    "confinement_paths",
    "default_child_scope",
    "default_root_scope",
    "effective_permission_at",
    "effective_rules",
    "format_rule",
    "normalize_rule",
    "parse_scope_arg",
    "permission_at",
    "rule_covers",
    "rules_overlap",
    "write_exclusions",
]

_RANK: dict[Permission, int] = {"read": 1, "write": 2}


# --- parsing and normalising -------------------------------------------------------


def parse_scope_arg(text: str, base_dir: str) -> ScopeRule:
    """Parse a ``--scope`` argument (``PATH``, ``PATH:read`` or ``PATH:write``) into a
    rule; see ``podd.core.scope_arg.parse``, which the CLI calls without this module's
    imports. Raises ``ValueError`` for an empty path or an unknown suffix."""
    rule = scope_arg.parse(text, base_dir)
    permission: Permission = "write" if rule["permission"] == "write" else "read"
    return ScopeRule(target=str(rule["target"]), permission=permission)


def normalize_rule(rule: ScopeRule) -> ScopeRule:
    """Return ``rule`` with its target made canonical (symlinks resolved, ``..`` gone).

    Raises ``ValueError`` if the target is not an absolute path.
    """
    if not os.path.isabs(rule.target):
        raise ValueError(f"scope target {rule.target!r} is not an absolute path")
    return attrs.evolve(rule, target=os.path.realpath(rule.target))


def default_root_scope(cwd: str) -> list[ScopeRule]:
    """Return the scope of a root pod started without ``--scope``: write on its cwd."""
    return [ScopeRule(target=os.path.realpath(cwd), permission="write")]


def default_child_scope(own: Sequence[ScopeRule]) -> list[ScopeRule]:
    """Return the scope of a child spawned without ``--scope``: read on each parent rule."""
    result: list[ScopeRule] = []
    for rule in own:
        read = attrs.evolve(rule, permission="read")
        if read not in result:
            result.append(read)
    return result


def format_rule(rule: ScopeRule) -> str:
    """Render a rule for people: ``write:/x/work``, ``read:/x (non-recursive)``."""
    text = f"{rule.permission}:{rule.target}"
    return text if rule.recursive else f"{text} (non-recursive)"


# --- paths and path sets ---------------------------------------------------------


def _clean(path: str) -> str:
    """Normalise a path lexically: no trailing slash, no ``.``/``..``, one leading slash."""
    path = os.path.normpath(path)
    # POSIX lets normpath keep exactly two leading slashes; they mean "/" here.
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


def _parent(path: str) -> str | None:
    """Return the directory holding ``path``, or None for ``/``."""
    if path == "/":
        return None
    return os.path.dirname(path)


def _is_within(path: str, top: str) -> bool:
    """Say whether ``path`` is ``top`` or beneath it (both cleaned)."""
    return top == "/" or path == top or path.startswith(top + "/")


def _rule_has_path(rule: ScopeRule, path: str) -> bool:
    """Say whether ``path`` is in the path set of ``rule``."""
    target, path = _clean(rule.target), _clean(path)
    if rule.recursive:
        return _is_within(path, target)
    return path == target or _parent(path) == target


def _paths_covered(outer: ScopeRule, inner: ScopeRule) -> bool:
    """Say whether the path set of ``inner`` is a subset of that of ``outer``."""
    o, i = _clean(outer.target), _clean(inner.target)
    if outer.recursive:
        return _is_within(i, o)
    # A non-recursive rule holds no grandchildren, and every rule other than a
    # non-recursive one on the same target reaches some.
    return not inner.recursive and i == o


def rule_covers(outer: ScopeRule, inner: ScopeRule) -> bool:
    """Say whether ``outer`` grants everything ``inner`` asks for.

    Its path set must contain that of ``inner``, and its permission must be the same or
    higher (write covers read and write; read covers read only).
    """
    return _RANK[outer.permission] >= _RANK[inner.permission] and _paths_covered(outer, inner)


def rules_overlap(a: ScopeRule, b: ScopeRule) -> bool:
    """Say whether the path sets of two rules share a path, whatever their permissions."""
    ta, tb = _clean(a.target), _clean(b.target)
    if a.recursive and b.recursive:
        return _is_within(ta, tb) or _is_within(tb, ta)
    if a.recursive or b.recursive:
        (rec, flat) = (ta, tb) if a.recursive else (tb, ta)
        # The flat rule's target lies in the subtree, or the subtree's top is one of the
        # flat rule's direct children; anything deeper only holds grandchildren.
        return _is_within(flat, rec) or _parent(rec) == flat
    return ta == tb or _parent(ta) == tb or _parent(tb) == ta


def permission_at(rules: Sequence[ScopeRule], path: str) -> Permission | None:
    """Return the highest permission the rules grant on ``path``, or None if none does."""
    best: Permission | None = None
    for rule in rules:
        if _rule_has_path(rule, path) and (best is None or _RANK[rule.permission] > _RANK[best]):
            best = rule.permission
    return best


# --- effective scope ---------------------------------------------------------------


def _held_writes(held: Mapping[str, Sequence[ScopeRule]]) -> Iterator[tuple[str, ScopeRule]]:
    """Yield ``(holder, rule)`` for every write rule delegated to a live pod."""
    for holder, rules in held.items():
        for rule in rules:
            if rule.permission == "write":
                yield holder, rule


def effective_permission_at(
    own: Sequence[ScopeRule], held: Mapping[str, Sequence[ScopeRule]], path: str
) -> Permission | None:
    """Return the permission the pod's own agent has on ``path``.

    That is the highest permission of its own rules, except that where a live child or
    grandchild holds write, the pod only reads.
    """
    permission = permission_at(own, path)
    if permission == "write" and any(_rule_has_path(r, path) for _, r in _held_writes(held)):
        return "read"
    return permission


def effective_rules(
    own: Sequence[ScopeRule], held: Mapping[str, Sequence[ScopeRule]]
) -> list[ScopeRule]:
    """Return the pod's own rules with each write rule wholly delegated for write made read.

    A write rule only partly delegated stays write here: rules cannot say "except", so
    the delegated parts come from ``write_exclusions``, and the exact effective scope is
    these rules minus write on those (``effective_permission_at`` computes it per path).
    """
    writes = [rule for _, rule in _held_writes(held)]
    result: list[ScopeRule] = []
    for rule in own:
        if rule.permission == "write" and any(_paths_covered(w, rule) for w in writes):
            rule = attrs.evolve(rule, permission="read")
        if rule not in result:
            result.append(rule)
    return result


def write_exclusions(
    own: Sequence[ScopeRule], held: Mapping[str, Sequence[ScopeRule]]
) -> list[ScopeRule]:
    """Return the delegated write rules that overlap the pod's own write rules.

    These are the places where the pod only reads while the holders live. The list is
    sorted by target and holds each rule once.
    """
    own_writes = [rule for rule in own if rule.permission == "write"]
    found = {
        rule
        for _, rule in _held_writes(held)
        if any(rules_overlap(rule, mine) for mine in own_writes)
    }
    return sorted(found, key=lambda r: (r.target, r.recursive))


def confinement_paths(
    own: Sequence[ScopeRule], held: Mapping[str, Sequence[ScopeRule]]
) -> tuple[list[str], list[str]]:
    """Return ``(write_paths, excluded)`` for ``podd.sandbox.prepare_confinement``.

    The kernel grants rights to whole hierarchies, so the translation errs on the side
    of less write: a non-recursive write rule is enforced as read only, and a
    non-recursive write rule held by a child excludes the whole subtree of its target.
    """
    rules = effective_rules(own, held)
    write_paths = [r.target for r in rules if r.permission == "write" and r.recursive]
    excluded = list(dict.fromkeys(r.target for r in write_exclusions(own, held)))
    return write_paths, excluded


# --- delegation --------------------------------------------------------------------


def _describe(rule: ScopeRule) -> str:
    """Name a rule inside a sentence: ``write on /x``, ``read on /x (non-recursive)``."""
    text = f"{rule.permission} on {rule.target}"
    return text if rule.recursive else f"{text} (non-recursive)"


def check_delegation(
    own: Sequence[ScopeRule],
    held: Mapping[str, Sequence[ScopeRule]],
    requested: Sequence[ScopeRule],
) -> None:
    """Check that a new child may get ``requested``, given the parent's ``own`` rules.

    ``held`` maps every live pod in the parent's registry to its delegated rules.
    Raises ``WriteConflict`` if a requested write rule overlaps a write rule held by
    another pod (naming both rules and the holder), else ``ScopeNotSubset`` if a
    requested rule is not covered by one of the parent's own rules with the same or a
    higher permission (naming the rule). Conflicts are reported first.
    """
    writes = list(_held_writes(held))
    for rule in requested:
        if rule.permission != "write":
            continue
        for holder, taken in writes:
            if rules_overlap(rule, taken):
                raise WriteConflict(
                    f"{_describe(rule)} overlaps {_describe(taken)} held by pod {holder!r}"
                )
    parent_scope = ", ".join(format_rule(r) for r in own) or "nothing"
    for rule in requested:
        if any(rule_covers(mine, rule) for mine in own):
            continue
        if any(_paths_covered(mine, rule) for mine in own):
            reason = "asks for more than the parent's permission there"
        else:
            reason = "is outside the parent's scope"
        raise ScopeNotSubset(f"scope {format_rule(rule)} {reason} ({parent_scope})")
