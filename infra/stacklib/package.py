"""Packaging: `chalice package` with the merge template, then what `aws cloudformation package` does (code to S3)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

from infra.stacklib.console import die, log
from infra.stacklib.layout import APP_VENV, BUILD_DIR, MERGE_TEMPLATE, ROOT
from infra.stacklib.target import Target

_CODE_PROPERTY = MappingProxyType(
    {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
)


def chalice_package(region: str, chalice_stage: str = "dev") -> None:
    chalice = APP_VENV / "bin" / "chalice"
    if not chalice.exists():
        die(f"{chalice} not found")
    if BUILD_DIR.exists():
        shutil.rmtree(BUILD_DIR)
    env = dict(os.environ, AWS_DEFAULT_REGION=region)
    res = subprocess.run(
        [
            str(chalice),
            "package",
            "--stage",
            chalice_stage,
            "--merge-template",
            str(MERGE_TEMPLATE.relative_to(ROOT)),
            str(BUILD_DIR.relative_to(ROOT)),
        ],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0 or not (BUILD_DIR / "sam.json").exists():
        sys.stderr.write(res.stdout + res.stderr)
        die("chalice package failed")
    log(
        f"chalice: packaged {BUILD_DIR.relative_to(ROOT)}/sam.json "
        f"({(BUILD_DIR / 'deployment.zip').stat().st_size // 1024} KiB zip)"
    )


def upload_artifacts(target: Target, template: dict[str, Any], build_dir: Path = BUILD_DIR) -> dict[str, Any]:
    """What `aws cloudformation package` does: upload local CodeUri/ContentUri
    files to S3 and point the template at them."""
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=target.bucket)
    except Exception:
        extra = {}
        if target.region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": target.region}
        s3.create_bucket(Bucket=target.bucket, **extra)
    uploaded: dict[str, dict[str, str]] = {}
    for res in template.get("Resources", {}).values():
        props = res.get("Properties", {})
        key_name = _CODE_PROPERTY.get(res.get("Type"))
        if not key_name or not isinstance(props.get(key_name), str):
            continue
        local = (build_dir / props[key_name]).resolve()
        if str(local) not in uploaded:
            data = local.read_bytes()
            key = f"{target.stack}/{local.stem}-{hashlib.sha256(data).hexdigest()[:16]}{local.suffix}"
            try:
                s3.head_object(Bucket=target.bucket, Key=key)
            except Exception:
                s3.put_object(Bucket=target.bucket, Key=key, Body=data)
            uploaded[str(local)] = {"Bucket": target.bucket, "Key": key}
        props[key_name] = dict(uploaded[str(local)])
    return template
