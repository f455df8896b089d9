"""The layer as `sam build` packs it: compiled, and without what the Lambda runtime already has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_layer_requirements_leave_out_boto():
    lines = (ROOT / "layers" / "sharelink" / "requirements.txt").read_text().lower().splitlines()
    packages = {line.split("==")[0] for line in lines if line and not line.startswith("#")}
    assert packages.isdisjoint({"boto3", "botocore", "s3transfer"})
    assert {"requests", "aws-lambda-powertools", "pydantic"} <= packages


def test_layer_build_ships_unchecked_hash_pyc(tmp_path):
    subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(ROOT / "layers" / "sharelink"),
            "build-SharelinkLayer",
            f"ARTIFACTS_DIR={tmp_path}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
        capture_output=True,
    )
    python = tmp_path / "python"
    compiled = list((python / "sharelink" / "__pycache__").glob("*.cpython-313.pyc"))

    assert compiled
    # PEP 552 flags: bit 0 = hash-based, bit 1 = check_source; unchecked-hash is 0b01
    assert all(int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01 for pyc in compiled)
    assert not (python / "boto3").exists() and not (python / "botocore").exists()
    assert (python / "pydantic_core").exists() and (python / "aws_lambda_powertools").exists()
