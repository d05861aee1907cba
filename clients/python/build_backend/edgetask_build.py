"""A PEP 517 build backend in the standard library alone.

The machines this worker runs on often reach no package index, and setuptools before 70.1
cannot build a wheel without the separate `wheel` package. This backend needs nothing: it zips
the `edgetask_worker` package with its metadata, so `pip install ./clients/python` works offline.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import zipfile
from typing import Any, Dict, List, Optional

NAME = "edgetask_worker"
DIST = "edgetask-worker"
VERSION = "0.1.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "py3-none-any"


def _metadata() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {DIST}\n"
        f"Version: {VERSION}\n"
        "Summary: Pull worker for edgetask: lease tasks over HTTPS, run them on your own (GPU) machine, report back.\n"
        "Requires-Python: >=3.9\n"
        "License: MIT\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "Description-Content-Type: text/markdown\n"
        "\n" + readme
    )


_WHEEL = f"Wheel-Version: 1.0\nGenerator: edgetask_build\nRoot-Is-Purelib: true\nTag: {TAG}\n"
_ENTRY_POINTS = "[console_scripts]\nedgetask-worker = edgetask_worker.__main__:main\n"


def _package_files() -> List[str]:
    files = []
    for name in sorted(os.listdir(os.path.join(ROOT, NAME))):
        if name.endswith(".py"):
            files.append(f"{NAME}/{name}")
    return files


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _dist_info_files() -> Dict[str, str]:
    info = f"{NAME}-{VERSION}.dist-info"
    return {
        f"{info}/METADATA": _metadata(),
        f"{info}/WHEEL": _WHEEL,
        f"{info}/entry_points.txt": _ENTRY_POINTS,
    }


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    info = f"{NAME}-{VERSION}.dist-info"
    for path, text in _dist_info_files().items():
        target = os.path.join(metadata_directory, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
    return info


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Dict[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    filename = f"{NAME}-{VERSION}-{TAG}.whl"
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        entries = [(path, open(os.path.join(ROOT, path), "rb").read()) for path in _package_files()]
        entries += [(path, text.encode("utf-8")) for path, text in _dist_info_files().items()]
        for path, data in entries:
            wheel.writestr(path, data)
            records.append(_record_line(path, data))
        record = f"{NAME}-{VERSION}.dist-info/RECORD"
        records.append(f"{record},,")
        wheel.writestr(record, "\n".join(records) + "\n")
    return filename


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    base = f"{NAME}-{VERSION}"
    filename = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as sdist:
        for path in _package_files() + ["pyproject.toml", "README.md", "build_backend/edgetask_build.py"]:
            sdist.add(os.path.join(ROOT, path), arcname=f"{base}/{path}")
        data = _metadata().encode("utf-8")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(data)
        sdist.addfile(info, io.BytesIO(data))
    return filename
