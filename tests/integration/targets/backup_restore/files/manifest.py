"""Write a checksum manifest ({"files": {abs path: sha256}}) of the files under the given paths."""
import hashlib
import json
import os
import sys

out, *paths = sys.argv[1:]
files = {}
for top in paths:
    for dirpath, _dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path) and path != out:
                with open(path, "rb") as handle:
                    files[path] = hashlib.sha256(handle.read()).hexdigest()
with open(out, "w", encoding="utf-8") as handle:
    json.dump({"files": files}, handle, indent=1, sort_keys=True)
