"""Make a collection artifact (the tarball `ansible-galaxy collection install` takes) from an installed copy.

    python tests/tools/collection_artifact.py SRC OUTDIR

SRC is an installed collection (…/ansible_collections/<namespace>/<name>, with MANIFEST.json), for example the copy
the `ansible` bundle put into a venv. Such a copy lacks some files its FILES.json lists (the bundle leaves out
.github and the like), so FILES.json is written again from the files really there (sha256 of each, __pycache__
left out) and MANIFEST.json points at it; collection_info (name, version, dependencies) stays as it was. Prints the
artifact's path. Used by tests/install-check.sh: Galaxy cannot be reached here.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entries(src: Path) -> list[dict]:
    out = [{"name": ".", "ftype": "dir", "chksum_type": None, "chksum_sha256": None, "format": 1}]
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if "__pycache__" in path.parts or rel in ("FILES.json", "MANIFEST.json") or path.is_symlink():
            continue
        if path.is_dir():
            out.append({"name": rel, "ftype": "dir", "chksum_type": None, "chksum_sha256": None, "format": 1})
        else:
            out.append({"name": rel, "ftype": "file", "chksum_type": "sha256",
                        "chksum_sha256": sha256(path.read_bytes()), "format": 1})
    return out


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main(argv: list[str]) -> int:
    src, outdir = Path(argv[1]), Path(argv[2])
    manifest = json.loads((src / "MANIFEST.json").read_text())
    files = entries(src)
    files_json = json.dumps({"files": files, "format": 1}, indent=4).encode()
    manifest["file_manifest_file"] = {"name": "FILES.json", "ftype": "file", "chksum_type": "sha256",
                                      "chksum_sha256": sha256(files_json), "format": 1}
    info = manifest["collection_info"]
    artifact = outdir / f"{info['namespace']}-{info['name']}-{info['version']}.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        add_bytes(tar, "MANIFEST.json", json.dumps(manifest, indent=4).encode())
        add_bytes(tar, "FILES.json", files_json)
        for entry in files[1:]:
            tar.add(src / entry["name"], arcname=entry["name"], recursive=False)
    print(artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
