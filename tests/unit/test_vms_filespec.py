"""VMS file specifications: parsing, mapping through logical names to paths, and back for display."""

from __future__ import annotations

from pathlib import Path

import pytest

from wucme.vms import lnm
from wucme.vms.filespec import FileSpec, FileSpecError, is_vms_spec, parse_filespec, to_path, to_paths, to_vms

DEVICES = ["WASD_ROOT", "ELSE", "DKA0", "WASD2", "NR", "WUCME_HERE", "SL", "LOOPDEV", "LOOPDEV2"]


@pytest.fixture(autouse=True)
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    monkeypatch.delenv("WUCME_LNM_CLUSTER_DIR", raising=False)
    for name in DEVICES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("_WUCME_LNM_" + name, raising=False)
    return tmp_path


@pytest.mark.parametrize("spec, fields", [
    ("WASD_ROOT:[LOCAL]WUCME_C_X.PEM;3", (None, "WASD_ROOT", ("LOCAL",), "WUCME_C_X", "PEM", 3, False, False)),
    ("else:[where]", (None, "ELSE", ("WHERE",), "", None, None, False, False)),
    ("NODE::DKA0:<A.B>N.T;", ("NODE", "DKA0", ("A", "B"), "N", "T", 0, False, False)),
    ("[.a.b]x.y", (None, None, ("A", "B"), "X", "Y", None, True, False)),
    ("[-]", (None, None, ("-",), "", None, None, True, False)),
    ("[--.SUB]", (None, None, ("-", "-", "SUB"), "", None, None, True, False)),
    ("[]", (None, None, (), "", None, None, True, False)),
    ("[000000]", (None, None, (), "", None, None, False, False)),
    ("[000000.A]", (None, None, ("A",), "", None, None, False, False)),
    ("DKA0:[WASD.]", (None, "DKA0", ("WASD",), "", None, None, False, True)),
    ("DKA0:[WASD.][LOCAL]", (None, "DKA0", ("WASD", "LOCAL"), "", None, None, False, False)),
    ("X.Y;-1", (None, None, None, "X", "Y", -1, False, False)),
    ("DEV:NAME.", (None, "DEV", None, "NAME", "", None, False, False)),
    ("A.B.7", (None, None, None, "A", "B", 7, False, False)),
])
def test_parse(spec: str, fields: tuple[object, ...]) -> None:
    fs = parse_filespec(spec)
    assert (fs.node, fs.device, fs.directory, fs.name, fs.type, fs.version, fs.relative, fs.rooted) == fields
    assert parse_filespec(str(fs)) == fs  # formatting round-trips


@pytest.mark.parametrize("spec", ["/etc/x", "dev:[a b]", "[A.-.B]", "[-A]", "dev:[a]]", "a:b:c", "x[y]"])
def test_parse_refuses(spec: str) -> None:
    with pytest.raises(FileSpecError):
        parse_filespec(spec)


@pytest.mark.parametrize("spec, vms", [
    ("WASD_ROOT:[LOCAL]", True), ("X.PEM", False), ("/srv/a:b", False), ("certs/x.pem", False),
    ("ELSE:[WHERE]", True), ("dev:", True), ("[.A]", True), ("C:\\x", False),
])
def test_is_vms_spec(spec: str, vms: bool) -> None:
    assert is_vms_spec(spec) is vms


def test_linux_paths_pass_through() -> None:
    assert to_path("/srv/certs/x.pem") == Path("/srv/certs/x.pem")
    assert to_path("certs/x.pem") == Path("certs/x.pem")


def test_concealed_root_linux_path(tmp_path: Path) -> None:
    (tmp_path / "wasd" / "LOCAL").mkdir(parents=True)
    lnm.define("WASD_ROOT", [f"{tmp_path}/wasd/"], "system", concealed=True)
    assert to_path("WASD_ROOT:[LOCAL]") == tmp_path / "wasd" / "LOCAL"  # existing case kept
    assert to_path("wasd_root:[local]wucme_c_x.pem") == tmp_path / "wasd" / "LOCAL" / "WUCME_C_X.PEM"
    assert to_path("WASD_ROOT:[000000]") == tmp_path / "wasd"
    assert to_path("WASD_ROOT:[NEW.SUB]A.B") == tmp_path / "wasd" / "new" / "sub" / "A.B"
    (tmp_path / "wasd" / "LOCAL" / "mixed.Pem").write_text("x")
    assert to_path("WASD_ROOT:[LOCAL]MIXED.PEM") == tmp_path / "wasd" / "LOCAL" / "mixed.Pem"
    with pytest.raises(FileSpecError) as err:
        to_path("WASD_ROOT:[-]")
    assert err.value.ident == "DIRUNDERFLOW"


def test_else_where_and_wucme_here(tmp_path: Path) -> None:
    lnm.define("ELSE", [str(tmp_path / "else")], "process")
    lnm.define("WUCME_HERE", ["ELSE:[WHERE]"], "system")
    here = lnm.trnlnm("WUCME_HERE")
    assert here == "ELSE:[WHERE]"
    assert to_path(here) == tmp_path / "else" / "where"
    assert to_path("WUCME_HERE:WUCME_C_A.PEM") == tmp_path / "else" / "where" / "WUCME_C_A.PEM"
    assert to_path("WUCME_HERE:[.SUB]") == tmp_path / "else" / "where" / "sub"
    assert to_path("WUCME_HERE:[OTHER]") == tmp_path / "else" / "other"  # VMS: explicit directory replaces


def test_rooted_vms_value(tmp_path: Path) -> None:
    lnm.define("DKA0", [str(tmp_path)], "system")
    lnm.define("WASD2", ["DKA0:[WASD.]"], "cluster", concealed=True)
    assert to_path("WASD2:[LOCAL]X.PEM") == tmp_path / "wasd" / "local" / "X.PEM"
    assert to_path("WASD2:[000000]") == tmp_path / "wasd"
    lnm.define("NR", ["DKA0:"], "system")  # a device name translated again
    assert to_path("NR:[A]") == tmp_path / "a"


def test_search_list_device(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    lnm.define("SL", [str(tmp_path / "one"), str(tmp_path / "two")], "system")
    assert to_paths("SL:F.TXT") == [tmp_path / "one" / "F.TXT", tmp_path / "two" / "F.TXT"]
    assert to_path("SL:F.TXT") == tmp_path / "one" / "F.TXT"  # nothing exists: where to create
    (tmp_path / "two" / "F.TXT").write_text("x")
    assert to_path("SL:F.TXT") == tmp_path / "two" / "F.TXT"


def test_device_errors(tmp_path: Path) -> None:
    with pytest.raises(FileSpecError) as err:
        to_path("NOSUCH_DEVICE_X:[A]")
    assert err.value.ident == "NOSUCHDEV"
    lnm.define("LOOPDEV", ["LOOPDEV2:"], "system")
    lnm.define("LOOPDEV2", ["LOOPDEV"], "system")
    with pytest.raises(FileSpecError) as err:
        to_path("LOOPDEV:[A]")
    assert err.value.ident == "LNMLOOP"
    lnm.define("NR", ["just words"], "system")
    with pytest.raises(FileSpecError):
        to_path("NR:[A]")
    with pytest.raises(FileSpecError):
        to_path("REMOTE::DKA0:[A]")


def test_no_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert to_path("[.SUB]X.Y") == tmp_path / "sub" / "X.Y"
    assert to_path("[A.B]") == Path("/a/b")


def test_versions_through_specs(tmp_path: Path) -> None:
    from wucme.vms.files import write_versioned
    lnm.define("WASD_ROOT", [f"{tmp_path}/wasd/"], "system", concealed=True)
    (tmp_path / "wasd" / "local").mkdir(parents=True)
    target = to_path("WASD_ROOT:[LOCAL]WUCME_C_X.PEM")
    for i in range(3):
        write_versioned(target, b"v%d" % i, keep=5)
    assert to_path("WASD_ROOT:[LOCAL]WUCME_C_X.PEM;3") == target
    assert to_path("WASD_ROOT:[LOCAL]WUCME_C_X.PEM;0") == target
    assert to_path("WASD_ROOT:[LOCAL]WUCME_C_X.PEM;1").read_bytes() == b"v0"
    assert to_path("WASD_ROOT:[LOCAL]WUCME_C_X.PEM;-1").read_bytes() == b"v1"
    with pytest.raises(FileSpecError):
        to_path("WASD_ROOT:[LOCAL]WUCME_C_X.PEM;-3")
    assert to_vms(target) == "WASD_ROOT:[LOCAL]WUCME_C_X.PEM;3"
    assert to_vms(target, version=False) == "WASD_ROOT:[LOCAL]WUCME_C_X.PEM"
    assert to_vms(f"{target};2") == "WASD_ROOT:[LOCAL]WUCME_C_X.PEM;2"


def test_to_vms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "wasd" / "local").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    lnm.define("WASD_ROOT", [f"{tmp_path}/wasd/"], "system", concealed=True)
    lnm.define("ELSE", [str(tmp_path / "other")], "system")  # not concealed: not shown
    assert to_vms(tmp_path / "wasd" / "local") == "WASD_ROOT:[LOCAL]"
    assert to_vms(tmp_path / "wasd") == "WASD_ROOT:[000000]"
    assert to_vms(tmp_path / "wasd" / "local" / "new.pem") == "WASD_ROOT:[LOCAL]NEW.PEM"
    # a path under no other concealed device is shown on SYS$DISK, the Linux root (built in)
    assert to_vms(tmp_path / "other" / "x.pem") == on_sys_disk(tmp_path / "other" / "x.pem")
    assert to_vms(tmp_path / "other" / "x.pem", devices=["ELSE"]) == "ELSE:[000000]X.PEM"
    assert to_vms(tmp_path / "other" / "x.pem", devices=["WASD_ROOT"]) == str(tmp_path / "other" / "x.pem")
    odd = tmp_path / "wasd" / "local" / "a.b.c"
    assert to_vms(odd) == str(odd)  # ODS-2 cannot spell it
    # a round trip: display form maps back to the same path
    p = tmp_path / "wasd" / "local" / "WUCME_C_WWW_EXAMPLE_ORG.PEM"
    assert to_path(to_vms(p)) == p
    # the process table overrides: a plain WASD_ROOT there is not concealed
    monkeypatch.setenv("WASD_ROOT", f"{tmp_path}/wasd/")
    assert to_vms(p) == on_sys_disk(p)


def on_sys_disk(path: Path) -> str:
    return f"SYS$DISK:[{'.'.join(path.parts[1:-1]).upper()}]{path.name.upper()}"


def test_filespec_is_value() -> None:
    fs = FileSpec(None, "DEV", ("A",), "N", "T", None)
    assert str(fs) == "DEV:[A]N.T" and fs.filename == "N.T"


def test_device_search_lists_of_search_lists_are_bounded(tmp_path: Path) -> None:
    """Found writing the translation fuzz target (tests/fuzz): a device whose search list names devices with search
    lists, ten deep: each chain within MAX_DEPTH, 20**9 of them in all (it hung)."""
    from tests.unit.test_vms_lnm import within

    for i in range(9):
        lnm.define(f"WUCME_T_D{i}", [f"WUCME_T_D{i + 1}:"] * 20, "system")
    lnm.define("WUCME_T_D9", [str(tmp_path)], "system")
    assert len(within(10, lambda: to_paths("WUCME_T_D8:[A]B.C"))) == 20  # type: ignore[arg-type]
    with pytest.raises(FileSpecError) as err:
        within(10, lambda: to_paths("WUCME_T_D0:[A]B.C"))
    assert err.value.ident == "TOOMANYLNAM"


def test_to_vms_leaves_a_directory_ods2_cannot_spell(tmp_path: Path) -> None:
    (tmp_path / "wasd" / "my.dir" / "sub").mkdir(parents=True)
    (tmp_path / "wasd" / "my.dir" / "x.pem").write_text("x")
    lnm.define("WASD_ROOT", [f"{tmp_path}/wasd/"], "system", concealed=True)
    for odd in (tmp_path / "wasd" / "my.dir", tmp_path / "wasd" / "my.dir" / "sub",
                tmp_path / "wasd" / "my.dir" / "x.pem"):
        assert to_vms(odd, devices=["WASD_ROOT"]) == str(odd)  # a dot in a directory name
    (tmp_path / "wasd" / "ok" / "sub").mkdir(parents=True)
    assert to_vms(tmp_path / "wasd" / "ok" / "sub", devices=["WASD_ROOT"]) == "WASD_ROOT:[OK.SUB]"
    for leaf in ("x;v2", "a+b.pem", ".pem", "noext"):
        p = tmp_path / "wasd" / "ok" / leaf
        want = {"x;v2": str(p), "a+b.pem": str(p), ".pem": "WASD_ROOT:[OK].PEM",
                "noext": "WASD_ROOT:[OK]NOEXT."}[leaf]
        assert to_vms(p, devices=["WASD_ROOT"], version=False) == want


# --- the edges mutation testing found unpinned (`build.py mutate vms.filespec`) ---------------------

@pytest.mark.parametrize("spec", ["X.Y;", "X.Y;3", "[--.A]X.Y", "[-]X.", "[.A.B]X", "DEV:[A.]", "DEV:[A]", "[]X"])
def test_a_spec_prints_back_as_written(spec: str) -> None:
    assert str(parse_filespec(spec)) == spec


def test_rooted_and_relative_directories() -> None:
    assert (parse_filespec("DEV:[A.]").rooted, parse_filespec("DEV:[A.]").directory) == (True, ("A",))
    assert parse_filespec("DEV:[AB.]").rooted and not parse_filespec("DEV:[A]").rooted
    x = parse_filespec("[X.Y]Z")
    assert (x.relative, x.directory) == (False, ("X", "Y"))
    with pytest.raises(FileSpecError):
        parse_filespec("[.]X")  # a dot alone names no directory


def test_climbing_above_a_device_says_so(tmp_path: Path) -> None:
    lnm.define("WASD_ROOT", [f"{tmp_path}/wasd/"], "system", concealed=True)
    lnm.define("DKA0", ["WASD_ROOT:[LOCAL]"], "system")  # a default directory on WASD_ROOT
    with pytest.raises(FileSpecError) as err:
        to_path("DKA0:[--.A]X.Y")
    assert err.value.ident == "DIRUNDERFLOW"
    assert str(err.value).endswith("'DKA0:[--.A]X.Y' goes above the top of its device")
    assert to_path("DKA0:[-.A]X.Y") == tmp_path / "wasd" / "a" / "X.Y"


def test_versions_named_that_do_not_exist(tmp_path: Path) -> None:
    from wucme.vms.files import write_versioned

    lnm.define("WASD_ROOT", [f"{tmp_path}/wasd/"], "system", concealed=True)
    (tmp_path / "wasd").mkdir()
    target = tmp_path / "wasd" / "X.PEM"
    for i in range(4):
        write_versioned(target, b"v%d" % i, keep=2)  # versions 1 and 2 are purged
    assert to_path("WASD_ROOT:[000000]X.PEM;1") == tmp_path / "wasd" / "X.PEM;1"  # where it would be
    assert to_path("WASD_ROOT:[000000]X.PEM;7") == tmp_path / "wasd" / "X.PEM;7"
    assert to_path("WASD_ROOT:[000000]X.PEM;-1").read_bytes() == b"v2"
    with pytest.raises(FileSpecError) as err:
        to_path("WASD_ROOT:[000000]X.PEM;-5")
    assert err.value.ident == "NOSUCHVER"
    assert str(err.value).endswith("no version -5 of 'WASD_ROOT:[000000]X.PEM;-5'")


def test_to_vms_skips_an_undefined_device_and_the_first_of_equal_roots_wins(tmp_path: Path) -> None:
    (tmp_path / "wasd").mkdir()
    lnm.define("WASD_ROOT", [f"{tmp_path}/wasd/"], "system", concealed=True)
    lnm.define("WASD2", [f"{tmp_path}/wasd/"], "system", concealed=True)
    p = tmp_path / "wasd" / "x.pem"
    assert to_vms(p, devices=["NOSUCHDEVICE", "WASD_ROOT"]) == "WASD_ROOT:[000000]X.PEM"
    assert to_vms(p, devices=["WASD_ROOT", "WASD2"]) == "WASD_ROOT:[000000]X.PEM"
    assert to_vms(p, devices=["WASD2", "WASD_ROOT"]) == "WASD2:[000000]X.PEM"


def test_dir_path_takes_a_linux_path_or_a_vms_directory(tmp_path: Path) -> None:
    from wucme.vms.filespec import dir_path

    lnm.define("ELSE", [f"{tmp_path}/else/"], "system", concealed=True)
    assert dir_path(str(tmp_path / "x")) == tmp_path / "x"
    assert dir_path("ELSE:[WHERE]") == to_path("ELSE:[WHERE]") == tmp_path / "else" / "where"


def test_device_translation_refusals_name_the_cause(tmp_path: Path) -> None:
    lnm.define("LOOPDEV", ["LOOPDEV2:"], "system")
    lnm.define("LOOPDEV2", ["loopdev:"], "system")  # lower case: the same device
    lnm.define("NR", ["NR:[A]X.Y"], "system")
    for i in range(12):
        lnm.define(f"WUCME_T_D{i}", [f"WUCME_T_D{i + 1}:"], "system")
    lnm.define("WUCME_T_D12", [f"{tmp_path}/"], "system")
    cases = {
        "NOSUCHDEV:[A]X.Y": ("NOSUCHDEV", "no such device NOSUCHDEV: (define it as a logical name)"),
        "LOOPDEV:[A]X.Y": ("LNMLOOP", "logical name loop: LOOPDEV -> LOOPDEV2 -> LOOPDEV"),
        "WUCME_T_D0:[A]X.Y": ("TOOMANYLNAM", "more than 10 levels of device translation for WUCME_T_D0:"),
        "NR:[A]X.Y": ("BADDEVICE", "device NR: translates to 'NR:[A]X.Y', which names no directory"),
        "NODE::NR:[A]X.Y": ("NODENOTSUP", "remote node NODE:: is not supported in 'NODE::NR:[A]X.Y'"),
    }
    for spec, (ident, message) in cases.items():
        with pytest.raises(FileSpecError) as err:
            to_path(spec)
        assert err.value.ident == ident and str(err.value).endswith(message), spec
    try:
        lnm.define("WUCME_T_D2", [f"{tmp_path}/"], "system")  # now within the limit
        assert to_path("WUCME_T_D0:[A]X.Y") == tmp_path / "a" / "X.Y"
    finally:
        for i in range(13):
            lnm.deassign(f"WUCME_T_D{i}", "system")


def test_a_search_list_device_gives_every_element_in_order(tmp_path: Path) -> None:
    lnm.define("ELSE", [f"{tmp_path}/one/"], "system")
    lnm.define("SL", ["else:", f"{tmp_path}/two/", "ELSE:[SUB]"], "system")
    assert to_paths("SL:[A]X.Y") == [tmp_path / "one" / "a" / "X.Y", tmp_path / "two" / "a" / "X.Y",
                                     tmp_path / "one" / "a" / "X.Y"]
    assert to_paths("SL:X.Y") == [tmp_path / "one" / "X.Y", tmp_path / "two" / "X.Y",
                                  tmp_path / "one" / "sub" / "X.Y"]


@pytest.mark.parametrize("spec", ["A/B.C", "[A][B]X", "[.A][.B]X", "[A.][.B]X", "[--A]X", "[.A.-]X"])
def test_specs_that_are_not_vms_are_refused(spec: str) -> None:
    with pytest.raises(FileSpecError) as err:
        parse_filespec(spec)
    assert repr(spec) in str(err.value)


def test_version_minus_is_the_highest() -> None:
    assert parse_filespec("X.Y;-").version == 0 and parse_filespec("X.Y;-1").version == -1
    assert is_vms_spec("X.Y;-") is False and is_vms_spec("DEV:X") and is_vms_spec("[A]X")
    assert not is_vms_spec("/srv/a:b") and not is_vms_spec("X.Y")
