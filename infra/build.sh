#!/usr/bin/env bash
#! The deployable build (`make build`, which `make deploy` and CI run): `sam build` of
#! template.yaml (all three functions, arm64, through cargo-lambda and zig from the
#! project's virtualenv) into .aws-sam/build, then a check of what it made: one aarch64
#! `bootstrap` per function, its zipped size, and no test machinery in it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
infra/install.sh
export PATH="$root/.local/venv/bin:$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
start=$SECONDS
sam build --config-env "${STAGE:-default}"
echo "build: sam build took $((SECONDS - start)) s"
# One build of the AWS SDK for the three functions: one fingerprint of aws-sdk-dynamodb
# on a fresh target directory (`make ci` holds it to one).
fingerprints=$(find "${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-gnu/release/.fingerprint" -maxdepth 1 -name 'aws-sdk-dynamodb-*' 2>/dev/null | wc -l)
echo "build: $fingerprints aws-sdk-dynamodb fingerprint(s) in the release target"
python - <<'PY'
import io, pathlib, zipfile
import sys
sys.path.insert(0, "infra/tests")
from test_template import TEMPLATE

# A deployed worker carries no test machinery: strings only a worker built with crash
# hooks for tests holds, and one every worker holds, so the search is known to see into
# the binary.
HOOKS = [b"test hook: panic on the first attempt", b"test_hook"]
EVERY_WORKER = b"work completed after its claim expired"

for name, resource in TEMPLATE["Resources"].items():
    if resource["Type"] != "AWS::Serverless::Function":
        continue
    bootstrap = pathlib.Path(".aws-sam/build") / name / "bootstrap"
    elf = bootstrap.read_bytes()
    # ELF, 64-bit, e_machine 0xB7: AArch64, what `Architectures: [arm64]` runs.
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and int.from_bytes(elf[18:20], "little") == 0xB7, name
    if resource["Metadata"]["BuildProperties"]["Binary"] == "worker":
        assert EVERY_WORKER in elf, f"{name}: the check cannot see into the binary"
    found = [hook.decode() for hook in HOOKS if hook in elf]
    assert not found, f"{name} carries test hooks: {found}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(bootstrap, "bootstrap")
    print(f"build: {name}: aarch64 bootstrap {len(elf) / 1e6:.1f} MB, zipped {buffer.tell() / 1e6:.2f} MB, no test hooks")
PY
