from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from podd.core.scope import (
    check_delegation,
    confinement_paths,
    default_child_scope,
    default_root_scope,
    effective_permission_at,
    effective_rules,
    format_rule,
    normalize_rule,
    parse_scope_arg,
    permission_at,
    rule_covers,
    rules_overlap,
    write_exclusions,
)
from protocol.errors import ScopeNotSubset, WriteConflict
from protocol.messages import Permission, ScopeRule


def r(target: str, permission: str = "read", recursive: bool = True) -> ScopeRule:
    assert permission in ("read", "write")
    perm: Permission = "write" if permission == "write" else "read"
    return ScopeRule(target=target, permission=perm, recursive=recursive)


def w(target: str, recursive: bool = True) -> ScopeRule:
    return r(target, "write", recursive)


@pytest.fixture
def tree() -> Iterator[str]:
    """A real directory (symlinks resolved) with a/b, a/link -> a/b and file f."""
    top = os.path.realpath(tempfile.mkdtemp(dir="/tmp"))
    os.makedirs(os.path.join(top, "a", "b"))
    os.symlink(os.path.join(top, "a", "b"), os.path.join(top, "a", "link"))
    with open(os.path.join(top, "f"), "w"):
        pass
    yield top
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                os.unlink(path)
            else:
                os.rmdir(path)
    os.rmdir(top)


class TestParseScopeArg:
    """A --scope argument becomes an absolute, resolved rule, read unless it says write."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("/x/work", r("/x/work")),
            ("/x/work:read", r("/x/work")),
            ("/x/work:write", w("/x/work")),
            ("/x/work/", r("/x/work")),
            ("/x/work/:write", w("/x/work")),
            ("/x//work/./sub/..", r("/x/work")),
            ("/x/../y:write", w("/y")),
            ("/", r("/")),
            ("/:write", w("/")),
            ("//", r("/")),
            ("/data/v1:2", r("/data/v1:2")),
            ("/data/a:b:read", r("/data/a:b")),
            ("/data/a:b:write", w("/data/a:b")),
            ("/data/a:write:read", r("/data/a:write")),
        ],
    )
    def test_absolute(self, text: str, expected: ScopeRule) -> None:
        assert expected == parse_scope_arg(text, "/nonexistent-base")

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("work", r("/base/dir/work")),
            ("work:write", w("/base/dir/work")),
            (".", r("/base/dir")),
            ("..:write", w("/base")),
            ("../other/./x", r("/base/other/x")),
            ("../../../..", r("/")),
        ],
    )
    def test_relative_to_base_dir(self, text: str, expected: ScopeRule) -> None:
        assert expected == parse_scope_arg(text, "/base/dir")

    @pytest.mark.parametrize("text", ["", ":read", ":write"])
    def test_empty_path_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="empty path"):
            parse_scope_arg(text, "/base")

    @pytest.mark.parametrize(
        "text", ["/x:rw", "/x:ro", "/x:WRITE", "/x:Read", "/x:readonly", "/x:", "rel:wrte"]
    )
    def test_bad_suffix_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="bad permission suffix"):
            parse_scope_arg(text, "/base")

    def test_symlink_is_resolved(self, tree: str) -> None:
        expected = w(os.path.join(tree, "a", "b"))
        assert expected == parse_scope_arg(os.path.join(tree, "a", "link") + ":write", "/")

    def test_relative_symlink_is_resolved(self, tree: str) -> None:
        assert r(os.path.join(tree, "a", "b")) == parse_scope_arg("a/link", tree)

    def test_dotdot_after_symlink_follows_the_link(self, tree: str) -> None:
        # The kernel resolves link/.. as b/.., i.e. a, not as the lexical parent.
        assert r(os.path.join(tree, "a")) == parse_scope_arg("a/link/..", tree)

    def test_symlinked_base_dir_is_resolved(self, tree: str) -> None:
        assert r(os.path.join(tree, "a", "b", "c")) == parse_scope_arg(
            "c", os.path.join(tree, "a", "link")
        )


class TestNormalizeRule:
    """normalize_rule makes the target canonical and refuses relative targets."""

    def test_resolves_symlinks_and_keeps_the_rest(self, tree: str) -> None:
        rule = w(os.path.join(tree, "a", "link") + "/", recursive=False)
        assert w(os.path.join(tree, "a", "b"), recursive=False) == normalize_rule(rule)

    @pytest.mark.parametrize(
        ("target", "expected"), [("/x/./y/../z/", "/x/z"), ("//x", "/x"), ("/", "/")]
    )
    def test_normalises_lexically(self, target: str, expected: str) -> None:
        assert r(expected) == normalize_rule(r(target))

    @pytest.mark.parametrize("target", ["", "x", "./x", "../x"])
    def test_relative_target_is_refused(self, target: str) -> None:
        with pytest.raises(ValueError, match="not an absolute path"):
            normalize_rule(r(target))


# Path relations for the matrix: (outer target, inner target, relation).
# recursive covers: inner within outer; overlap (both recursive): either within the other.
PATH_PAIRS = [
    ("/a/b", "/a/b", "equal"),
    ("/a", "/a/b", "parent"),
    ("/a", "/a/b/c", "ancestor"),
    ("/a/b", "/a", "child"),
    ("/a/b/c", "/a", "descendant"),
    ("/a/b", "/a/c", "sibling"),
    ("/a/b", "/a/bc", "prefix"),
    ("/a/bc", "/a/b", "prefix-reversed"),
    ("/", "/a/b", "root-outer"),
    ("/a/b", "/", "root-inner"),
    ("/", "/", "root-equal"),
    ("/a/b/", "/a/b/c", "trailing-slash-outer"),
    ("/a/b", "/a/b/", "trailing-slash-inner"),
    ("/a/b", "/x/y", "unrelated"),
]

# For each relation and (outer recursive, inner recursive): do the paths of inner lie
# in outer (covers), and do they share a path (overlap)?
#   relation            rr       rn       nr       nn
COVERS = {
    "equal": (True, True, False, True),
    "parent": (True, True, False, False),
    "ancestor": (True, True, False, False),
    "child": (False, False, False, False),
    "descendant": (False, False, False, False),
    "sibling": (False, False, False, False),
    "prefix": (False, False, False, False),
    "prefix-reversed": (False, False, False, False),
    "root-outer": (True, True, False, False),
    "root-inner": (False, False, False, False),
    "root-equal": (True, True, False, True),
    "trailing-slash-outer": (True, True, False, False),
    "trailing-slash-inner": (True, True, False, True),
    "unrelated": (False, False, False, False),
}
OVERLAPS = {
    "equal": (True, True, True, True),
    "parent": (True, True, True, True),
    "ancestor": (True, True, False, False),
    "child": (True, True, True, True),
    "descendant": (True, False, True, False),
    "sibling": (False, False, False, False),
    "prefix": (False, False, False, False),
    "prefix-reversed": (False, False, False, False),
    "root-outer": (True, True, False, False),
    "root-inner": (True, False, True, False),
    "root-equal": (True, True, True, True),
    "trailing-slash-outer": (True, True, True, True),
    "trailing-slash-inner": (True, True, True, True),
    "unrelated": (False, False, False, False),
}
RECURSION = [(True, True), (True, False), (False, True), (False, False)]


def matrix(table: dict[str, tuple[bool, bool, bool, bool]]) -> list[object]:
    return [
        pytest.param(outer, inner, o_rec, i_rec, table[rel][k], id=f"{rel}-{k}")
        for outer, inner, rel in PATH_PAIRS
        for k, (o_rec, i_rec) in enumerate(RECURSION)
    ]


class TestRuleCovers:
    """rule_covers needs both path containment and an equal or higher permission."""

    @pytest.mark.parametrize(("outer", "inner", "o_rec", "i_rec", "expected"), matrix(COVERS))
    def test_path_matrix_with_equal_permission(
        self, outer: str, inner: str, o_rec: bool, i_rec: bool, expected: bool
    ) -> None:
        for perm in ("read", "write"):
            assert expected == rule_covers(r(outer, perm, o_rec), r(inner, perm, i_rec))

    @pytest.mark.parametrize(
        ("outer", "inner", "expected"),
        [
            ("write", "write", True),
            ("write", "read", True),
            ("read", "read", True),
            ("read", "write", False),
        ],
    )
    def test_permission(self, outer: str, inner: str, expected: bool) -> None:
        assert expected == rule_covers(r("/a", outer), r("/a/b", inner))

    def test_read_does_not_cover_write_even_on_the_same_path(self) -> None:
        assert not rule_covers(r("/a"), w("/a"))

    def test_no_permission_rescues_a_path_outside(self) -> None:
        assert not rule_covers(w("/a/b"), r("/a/bc"))


class TestRulesOverlap:
    """rules_overlap compares path sets only, symmetrically, ignoring permission."""

    @pytest.mark.parametrize(("a", "b", "a_rec", "b_rec", "expected"), matrix(OVERLAPS))
    def test_path_matrix(self, a: str, b: str, a_rec: bool, b_rec: bool, expected: bool) -> None:
        for pa, pb in [("read", "read"), ("write", "read"), ("write", "write")]:
            assert expected == rules_overlap(r(a, pa, a_rec), r(b, pb, b_rec))
            assert expected == rules_overlap(r(b, pb, b_rec), r(a, pa, a_rec))

    def test_non_recursive_siblings_under_a_shared_parent_do_not_overlap(self) -> None:
        assert not rules_overlap(r("/a/b", recursive=False), r("/a/c", recursive=False))

    def test_recursive_child_of_non_recursive_rule_overlaps_at_the_child(self) -> None:
        assert rules_overlap(r("/a", recursive=False), r("/a/b"))

    def test_recursive_grandchild_of_non_recursive_rule_does_not_overlap(self) -> None:
        assert not rules_overlap(r("/a", recursive=False), r("/a/b/c"))


class TestPermissionAt:
    """permission_at returns the highest permission of the rules whose path set holds it."""

    RULES = (
        r("/x"),
        w("/x/work"),
        w("/y", recursive=False),
        r("/y/deep"),
    )

    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("/x", "read"),
            ("/x/other/f", "read"),
            ("/x/work", "write"),
            ("/x/work/", "write"),
            ("/x/work/deep/f", "write"),
            ("/x/workshop", "read"),
            ("/xy", None),
            ("/", None),
            ("/y", "write"),
            ("/y/f", "write"),
            ("/y/sub/f", None),
            ("/y/deep", "write"),
            ("/y/deep/f", "read"),
            ("/z", None),
        ],
    )
    def test_paths(self, path: str, expected: str | None) -> None:
        assert expected == permission_at(self.RULES, path)

    def test_no_rules_grant_nothing(self) -> None:
        assert permission_at([], "/x") is None

    def test_root_rule_covers_everything(self) -> None:
        assert permission_at([w("/")], "/any/where") == "write"

    def test_non_recursive_root_rule_covers_top_level_entries_only(self) -> None:
        rules = [r("/", recursive=False)]
        assert tuple(permission_at(rules, p) for p in ("/", "/etc", "/etc/passwd")) == (
            "read",
            "read",
            None,
        )


class TestEffectiveScope:
    """Where a live child holds write the parent only reads; write returns when it is gone."""

    OWN = (w("/x"), r("/ro"))

    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("/x", "write"),
            ("/x/f", "write"),
            ("/x/a", "read"),
            ("/x/a/deep/f", "read"),
            ("/x/ab", "write"),
            ("/x/b", "write"),
            ("/x/c", "read"),
            ("/x/c/d", "read"),
            ("/x/c/d/e", "write"),
            ("/ro/f", "read"),
            ("/elsewhere", None),
        ],
    )
    def test_effective_permission(self, path: str, expected: str | None) -> None:
        held = {"w1": [w("/x/a")], "r1": [r("/x/b")], "n1": [w("/x/c", recursive=False)]}
        assert expected == effective_permission_at(self.OWN, held, path)

    def test_write_returns_when_the_child_is_gone(self) -> None:
        assert effective_permission_at(self.OWN, {"w1": [w("/x/a")]}, "/x/a/f") == "read"
        assert effective_permission_at(self.OWN, {}, "/x/a/f") == "write"

    def test_grandchild_write_also_counts(self) -> None:
        held = {"child": [r("/x")], "grandchild": [w("/x/g")]}
        assert effective_permission_at(self.OWN, held, "/x/g/f") == "read"

    def test_effective_rules_downgrade_only_wholly_delegated_writes(self) -> None:
        own = [w("/x"), w("/y"), w("/z"), r("/r")]
        held = {"c1": [w("/x/a")], "c2": [w("/y")], "c3": [r("/z")]}
        assert [w("/x"), r("/y"), w("/z"), r("/r")] == effective_rules(own, held)

    def test_effective_rules_under_a_write_on_root_are_all_read(self) -> None:
        own = [w("/x"), w("/y", recursive=False)]
        expected = [r("/x"), r("/y", recursive=False)]
        assert expected == effective_rules(own, {"c": [w("/")]})

    def test_effective_rules_without_children_are_the_own_rules(self) -> None:
        assert [w("/x"), r("/ro")] == effective_rules(self.OWN, {})

    def test_effective_rules_drop_duplicates_made_by_downgrading(self) -> None:
        assert [r("/x")] == effective_rules([w("/x"), r("/x")], {"c": [w("/x")]})

    def test_write_exclusions_are_the_held_writes_inside_own_writes(self) -> None:
        held = {
            "b": [w("/x/b")],
            "a": [w("/x/a"), r("/x/r")],
            "again": [w("/x/a")],
            "outside": [w("/other")],
        }
        assert [w("/x/a"), w("/x/b")] == write_exclusions(self.OWN, held)

    def test_confinement_paths(self) -> None:
        own = [w("/x"), w("/y"), w("/flat", recursive=False), r("/ro")]
        held = {"c1": [w("/x/a")], "c2": [w("/y")], "c3": [w("/x/a/b")]}
        assert confinement_paths(own, held) == (["/x"], ["/x/a", "/x/a/b", "/y"])


class TestCheckDelegation:
    """check_delegation refuses write conflicts first, then rules outside the parent's."""

    OWN = (w("/x"), r("/ro"))

    @pytest.mark.parametrize(
        "requested",
        [
            [],
            [r("/x")],
            [w("/x")],
            [w("/x/a"), r("/ro/sub")],
            [r("/ro")],
            [r("/ro/deep/f", recursive=False)],
            [w("/x/a", recursive=False)],
        ],
    )
    def test_covered_rules_are_accepted(self, requested: list[ScopeRule]) -> None:
        check_delegation(self.OWN, {}, requested)

    @pytest.mark.parametrize(
        ("requested", "message"),
        [
            ([r("/elsewhere")], "scope read:/elsewhere is outside the parent's scope"),
            ([r("/xy")], "scope read:/xy is outside"),
            ([r("/")], "scope read:/ is outside"),
            ([w("/ro")], "scope write:/ro asks for more than the parent's permission"),
            ([w("/ro/a")], "scope write:/ro/a asks for more"),
            ([r("/x/a"), r("/nope")], "scope read:/nope is outside"),
            ([r("rel")], "scope read:rel is outside"),
        ],
    )
    def test_uncovered_rules_are_refused(self, requested: list[ScopeRule], message: str) -> None:
        with pytest.raises(ScopeNotSubset, match=message) as info:
            check_delegation(self.OWN, {}, requested)
        assert "(write:/x, read:/ro)" in str(info.value)

    def test_non_recursive_parent_rule_does_not_cover_a_subtree(self) -> None:
        with pytest.raises(ScopeNotSubset, match=r"read:/flat/a is outside"):
            check_delegation([r("/flat", recursive=False)], {}, [r("/flat/a")])

    def test_parent_without_scope_delegates_nothing(self) -> None:
        with pytest.raises(ScopeNotSubset, match=r"\(nothing\)"):
            check_delegation([], {}, [r("/x")])

    @pytest.mark.parametrize(
        ("held_rule", "requested", "message"),
        [
            (w("/x/a"), w("/x/a"), "write on /x/a overlaps write on /x/a held by pod 'w1'"),
            (w("/x/a"), w("/x/a/b"), "write on /x/a/b overlaps write on /x/a held by pod 'w1'"),
            (w("/x/a/b"), w("/x/a"), "write on /x/a overlaps write on /x/a/b held by pod 'w1'"),
            (
                w("/x/a", recursive=False),
                w("/x/a/f"),
                "write on /x/a/f overlaps write on /x/a \\(non-recursive\\) held by pod 'w1'",
            ),
        ],
    )
    def test_overlapping_writes_conflict(
        self, held_rule: ScopeRule, requested: ScopeRule, message: str
    ) -> None:
        with pytest.raises(WriteConflict, match=f"^{message}$"):
            check_delegation(self.OWN, {"w1": [held_rule]}, [requested])

    @pytest.mark.parametrize(
        ("held_rule", "requested"),
        [
            (w("/x/a"), w("/x/b")),
            (w("/x/a"), w("/x/ab")),
            (w("/x/a/b/c"), w("/x/a", recursive=False)),
            (w("/x/a"), r("/x/a")),
            (w("/x/a"), r("/x")),
            (r("/x/a"), w("/x/a")),
        ],
    )
    def test_non_conflicting_rules_are_accepted(
        self, held_rule: ScopeRule, requested: ScopeRule
    ) -> None:
        check_delegation(self.OWN, {"other": [held_rule]}, [requested])

    def test_conflict_takes_precedence_over_not_subset(self) -> None:
        with pytest.raises(WriteConflict, match="held by pod 'w1'"):
            check_delegation(self.OWN, {"w1": [w("/x/a")]}, [r("/nope"), w("/x/a")])

    def test_grandchild_holder_is_named(self) -> None:
        held = {"child": [r("/x")], "grandchild": [w("/x/g")]}
        with pytest.raises(WriteConflict, match="held by pod 'grandchild'"):
            check_delegation(self.OWN, held, [w("/x/g/h")])

    def test_write_is_delegable_again_after_the_holder_is_gone(self) -> None:
        with pytest.raises(WriteConflict):
            check_delegation(self.OWN, {"w1": [w("/x/a")]}, [w("/x/a")])
        check_delegation(self.OWN, {}, [w("/x/a")])


class TestDefaultsAndFormatting:
    """Defaults follow least privilege, and rules render as permission:path."""

    def test_default_child_scope_reads_each_parent_rule(self) -> None:
        own = [w("/x"), r("/ro"), w("/flat", recursive=False), r("/x")]
        assert [r("/x"), r("/ro"), r("/flat", recursive=False)] == default_child_scope(own)

    def test_default_root_scope_writes_the_resolved_cwd(self, tree: str) -> None:
        expected = [w(os.path.join(tree, "a", "b"))]
        assert expected == default_root_scope(os.path.join(tree, "a", "link"))

    @pytest.mark.parametrize(
        ("rule", "text"),
        [
            (w("/x/work"), "write:/x/work"),
            (r("/x"), "read:/x"),
            (r("/x", recursive=False), "read:/x (non-recursive)"),
        ],
    )
    def test_format_rule(self, rule: ScopeRule, text: str) -> None:
        assert text == format_rule(rule)
