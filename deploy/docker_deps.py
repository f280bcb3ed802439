"""Third-party dependencies of the given pyproject.toml files, one per line (the image installs
them in a layer of their own, before any source is copied)."""
import sys
import tomllib

names = set()
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        for dep in tomllib.load(f)["project"].get("dependencies", []):
            if not dep.startswith("saas-"):
                names.add(dep)
print("\n".join(sorted(names)))
