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


def test_linked_files_exist():
    for link in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        target = (ROOT / link).resolve()
        # Only the repository's own files: ../shared (the team handbook) sits beside a clone.
        if target.is_relative_to(ROOT):
            assert target.exists(), link


def test_make_targets_named_in_the_readme_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for target in set(re.findall(r"`make ([a-z][a-z-]*)", README)):
        assert target in targets, target
