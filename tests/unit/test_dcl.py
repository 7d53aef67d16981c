"""The DCL-style command parser: abbreviations, qualifiers, quoting, lists and `-` continuation."""
from __future__ import annotations

from pathlib import Path

import pytest

from wucme.command import (Command, DclError, Qualifier, Verb, join_continuations, match_keyword, parse,
                       split_list, unquote)
from wucme.verbs import VERBS

ROT = Verb("revoke", (Qualifier("reason", "required"),), 1, 1)
SAMPLE = (
    Verb("certificates", (Qualifier("output", "required", keywords=("text", "json")),)),
    Verb("check", (Qualifier("ca"), Qualifier("http01"), Qualifier("seconds", "required"))),
    Verb("define", (Qualifier("system"), Qualifier("cluster"), Qualifier("process")), 2, None),
    Verb("deassign", (Qualifier("system"),), 1, 1),
    Verb("issue", (Qualifier("progress", negatable=True),), 1, None),
    Verb("show", (), 1, 2),
    ROT,
)


@pytest.mark.parametrize("word, verb", [
    ("certificates", "certificates"), ("CERT", "certificates"), ("ce", "certificates"),
    ("CHECK", "check"), ("ch", "check"), ("Iss", "issue"), ("i", "issue"), ("def", "define"),
    ("dea", "deassign"), ("sh", "show"), ("r", "revoke"),
])
def test_verbs_abbreviate_to_uniqueness(word: str, verb: str) -> None:
    params = {"issue": ["x.org"], "define": ["a", "b"], "deassign": ["a"], "show": ["logical"],
              "revoke": ["f"]}.get(verb, [])
    assert parse([word, *params], SAMPLE).verb == verb


@pytest.mark.parametrize("word, ident", [("c", "ABVERB"), ("de", "ABVERB"), ("frob", "IVVERB"),
                                         ("", "IVVERB"), ("--force", "IVVERB")])
def test_ambiguous_or_unknown_verbs(word: str, ident: str) -> None:
    with pytest.raises(DclError) as e:
        parse([word], SAMPLE)
    assert e.value.ident == ident


def test_exact_name_wins_over_longer_names() -> None:
    verbs = (Verb("show"), Verb("showall"))
    assert parse(["show"], verbs).verb == "show"
    assert parse(["showa"], verbs).verb == "showall"
    with pytest.raises(DclError):
        match_keyword("super", ["superseded", "supervisor"])


def test_the_real_verb_table_is_unambiguous_at_four_characters() -> None:
    names = [v.name for v in VERBS]
    params = {"define": ["a", "b"], "issue": ["x.org"], "revoke": ["x"], "deassign": ["x"],
              "show": ["logical"]}
    for n in names:
        assert parse([n[:4], *params.get(n, [])], VERBS).verb == n
    assert {"register", "issue", "certificates", "check", "manage", "revoke", "version", "define",
            "deassign", "show"} <= set(names)


@pytest.mark.parametrize("argv", [
    ["check", "/ca"], ["CHECK", "/CA"], ["check/ca"], ["Check", "--ca"], ["ch", "/c"],
])
def test_qualifier_forms(argv: list[str]) -> None:
    assert parse(argv, SAMPLE) == Command("check", {"ca": True}, [])


def test_glued_qualifiers_and_values() -> None:
    cmd = parse(["check/http/sec=5"], SAMPLE)
    assert cmd.qualifiers == {"http01": True, "seconds": "5"}
    cmd = parse(["certificates", "/OUT=JS"], SAMPLE)
    assert cmd.value("output") == "json"
    cmd = parse(["cert", "--output=text"], SAMPLE)
    assert cmd.value("output") == "text"
    cmd = parse(["revoke", "file.pem/reason=super"], SAMPLE)
    assert cmd.params == ["file.pem"] and cmd.value("reason") == "super"
    cmd = parse(["revoke", '/reason="key compromise"', "f"], SAMPLE)
    assert cmd.value("reason") == "key compromise"


def test_qualifier_errors() -> None:
    for argv, ident in [
        (["check", "/frob"], "IVQUAL"),
        (["check", "/ca=1"], "NOVALU"),
        (["check", "/seconds"], "VALREQ"),
        (["certificates", "/output=xml"], "IVKEYW"),
        (["define", "/c", "/p", "/x", "a", "b"], "IVQUAL"),
        (["show", "/x", "logical"], "IVQUAL"),
    ]:
        with pytest.raises(DclError) as e:
            parse(argv, SAMPLE)
        assert e.value.ident == ident, argv


def test_ambiguous_qualifier() -> None:
    verb = Verb("define", (Qualifier("system"), Qualifier("supervisor_mode")), 0, None)
    with pytest.raises(DclError) as e:
        parse(["define", "/s"], (verb,))
    assert e.value.ident == "ABQUAL"
    assert parse(["define", "/sy"], (verb,)).has("system")


def test_negatable_qualifier() -> None:
    assert parse(["issue", "/noprog", "a.org"], SAMPLE).qualifiers == {"progress": False}
    assert parse(["issue", "a.org", "/PROGRESS"], SAMPLE).qualifiers == {"progress": True}
    with pytest.raises(DclError):
        parse(["check", "/noca"], SAMPLE)


def test_parameter_counts() -> None:
    with pytest.raises(DclError) as e:
        parse(["issue"], SAMPLE)
    assert e.value.ident == "INSFPRM"
    with pytest.raises(DclError) as e:
        parse(["revoke", "a", "b"], SAMPLE)
    assert e.value.ident == "MAXPARM"


def test_linux_paths_are_parameters(tmp_path: Path) -> None:
    f = tmp_path / "c.pem"
    f.write_text("x")
    assert parse(["revoke", str(f)], SAMPLE).params == [str(f)]
    assert parse(["revoke", "/etc/ssl/none/cert.pem", "/reason=1"], SAMPLE).params == ["/etc/ssl/none/cert.pem"]
    assert parse(["revoke", "--", "/reason"], SAMPLE).params == ["/reason"]
    assert parse(["revoke", "/cert.pem"], SAMPLE).params == ["/cert.pem"]
    assert parse(["define", "WUCME_HERE", "/srv/wucme/certs"], SAMPLE).params == ["WUCME_HERE", "/srv/wucme/certs"]


@pytest.mark.parametrize("params, hosts", [
    (["a.org"], ["a.org"]),
    (["a.org,b.org"], ["a.org", "b.org"]),
    (["a.org", "b.org"], ["a.org", "b.org"]),
    (["a.org, b.org ,c.org"], ["a.org", "b.org", "c.org"]),
    (["a.org,", "b.org"], ["a.org", "b.org"]),
    (["a.org,b.org,-", "c.org,d.org"], ["a.org", "b.org", "c.org", "d.org"]),
    (["a.org,b.org", "-", "c.org"], ["a.org", "b.org", "c.org"]),
    (["www.exa-", "mple.org"], ["www.example.org"]),
    (["a.org,a.org", "b.org", "a.org"], ["a.org", "b.org"]),
    (['"a.org"', '"b.org,c.org"'], ["a.org", "b.org,c.org"]),
    (["a.org,,b.org"], ["a.org", "b.org"]),
    (["a.org", "-"], ["a.org"]),
])
def test_host_lists(params: list[str], hosts: list[str]) -> None:
    assert split_list(params) == hosts


def test_seed_procedure_continuation() -> None:
    # $ wucme issue www.example.org,two.example.org,three.example.org,-
    #   four.example.org,five.example.org
    argv = ["issue", "www.example.org,two.example.org,three.example.org,-",
            "four.example.org,five.example.org"]
    cmd = parse(argv, SAMPLE)
    assert split_list(cmd.params) == ["www.example.org", "two.example.org", "three.example.org",
                                      "four.example.org", "five.example.org"]


def test_quoting() -> None:
    assert unquote('"a b"') == "a b"
    assert unquote('"say ""hi"""') == 'say "hi"'
    assert unquote('ab"C d"e') == "abC de"
    with pytest.raises(DclError):
        unquote('"open')
    with pytest.raises(DclError):
        split_list(['"open'])
    # a quoted token is never a qualifier
    assert parse(["revoke", '"/reason"'], SAMPLE).params == ['"/reason"']


def test_join_continuations_keeps_other_tokens() -> None:
    assert join_continuations(["a", "b"]) == ["a", "b"]
    assert join_continuations(["-", "a"]) == ["a"]
    assert join_continuations(["--x", "a-", "b"]) == ["--x", "ab"]
