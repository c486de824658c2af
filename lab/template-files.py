"""`make template-files`: rewrites CargoLambda.toml's ignore_files as every tracked file
that is not a project's (infra/tests/test_template_project.py, PROJECT_FILES), since
`cargo lambda new` matches that list as exact paths."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra" / "tests"))

from test_template_project import PROJECT_FILES  # noqa: E402

tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
left = sorted(set(tracked) - PROJECT_FILES)
config = ROOT / "CargoLambda.toml"
listed = "ignore_files = [\n" + "".join(f'  "{path}",\n' for path in left) + "]"
text = re.sub(r"ignore_files = \[\n(?:  \"[^\"]*\",\n)*\]", lambda _: listed, config.read_text())
config.write_text(text)
print(f"template-files: {len(left)} files left behind, {len(PROJECT_FILES)} a project's")
