"""The README stays true: its environment table is what the settings classes say, and the
files and commands it points to exist."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def envdoc():
    spec = importlib.util.spec_from_file_location("envdoc", ROOT / "deploy" / "envdoc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_environment_table_matches_the_settings_classes():
    assert envdoc().readme_with_table(README) == README, "run: python deploy/envdoc.py --write"


def test_every_setting_of_every_process_is_in_the_table():
    mod = envdoc()
    documented = {row[0] for row in mod.rows()}
    for process, module in mod.PROCESSES:
        cls = mod.settings_class(module)
        for name, field in cls.model_fields.items():
            if name in mod.UNUSED.get(process, ()):
                continue
            var = mod.env_name(cls, name, field)
            assert var in documented or f"<PREFIX>_{name.upper()}" in documented, var


MARKDOWN_LINK = re.compile(r"\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)")


def readmes() -> list[Path]:
    return [ROOT / "README.md"] + sorted(p for p in ROOT.glob("*/README.md"))


def test_linked_files_exist():
    for readme in readmes():
        for link in MARKDOWN_LINK.findall(readme.read_text()):
            path = link.split("#", 1)[0]
            if not path or "://" in link or link.startswith("mailto:"):
                continue
            assert (readme.parent / path).resolve().exists(), f"{readme.relative_to(ROOT)}: {link}"


def test_no_link_leaves_the_repository():
    """A reader of a clone has only the clone: no link to a file beside it (the team's contract
    sits beside a clone, not in it) and no link to another site; the API reference is the
    generated document and the READMEs."""
    for readme in readmes():
        for link in MARKDOWN_LINK.findall(readme.read_text()):
            where = f"{readme.relative_to(ROOT)}: {link}"
            assert "://" not in link and not link.startswith(("mailto:", "//")), where
            path = link.split("#", 1)[0]
            if path:
                assert (readme.parent / path).resolve().is_relative_to(ROOT), where


def test_the_link_checks_can_fail(tmp_path):
    text = "[contract](../shared/API.md), [rfc](https://www.rfc-editor.org/rfc/rfc9457), [ok](shared/README.md)"
    links = MARKDOWN_LINK.findall(text)
    assert links == ["../shared/API.md", "https://www.rfc-editor.org/rfc/rfc9457", "shared/README.md"]
    assert not (ROOT / links[0]).resolve().is_relative_to(ROOT)


def test_make_targets_named_in_the_readme_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for target in set(re.findall(r"`make ([a-z][a-z-]*)", README)):
        assert target in targets, target
