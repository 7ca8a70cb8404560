#!/usr/bin/env bash
# The backup history of a ransomware case, five days, in a restic repository and a borg repository alike:
#   10th  clean
#   11th  clean, one legitimate change (notes.txt)
#   12th  the manifest was recorded, then the data was encrypted in place before the backup ran (no rename)
#   13th  files renamed to *.encrypted and a ransom note; the manifest recorded after the damage agrees with it
#   14th  as the 13th (taken after the cutoff the tests give)
# Before each backup the checksum manifest of $src/app is recorded in $src/meta/manifest.json (format 1,
# {"files": {path: sha256}}, which the manifest readers keep reading), as restoreops.dr.backup_context does.
# usage: make_history.sh SRC RESTIC_REPO BORG_REPO PASSFILE
set -euo pipefail
src=$1 restic_repo=$2 borg_repo=$3 passfile=$4
export RESTIC_PASSWORD_FILE="$passfile" BORG_PASSCOMMAND="cat $passfile"
data="$src/app/data"

manifest() {
  python3 -c 'import hashlib, json, pathlib, sys
files = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in pathlib.Path(sys.argv[1]).rglob("*") if p.is_file()}
pathlib.Path(sys.argv[2]).write_text(json.dumps({"files": files}))' "$src/app" "$src/meta/manifest.json"
}
backup() { # DAY
  restic backup -r "$restic_repo" -q --time "2026-03-$1 02:00:00" "$src"
  (cd / && borg create --timestamp "2026-03-$1T02:00:00" "$borg_repo::app-2026-03-$1" "${src#/}")
}

mkdir -p "$data" "$src/meta"
python3 - "$src/app" <<'PY'
import json, os, sqlite3, sys
app = sys.argv[1]
orders = [{"id": i, "customer": f"c{i % 97}", "total": round(i * 3.5, 2)} for i in range(1500)]
with open(os.path.join(app, "data", "orders.json"), "w") as f:
    json.dump(orders, f)
with open(os.path.join(app, "data", "customers.csv"), "w") as f:
    f.writelines(f"c{i},Customer number {i},{i % 7} Main Street\n" for i in range(1200))
with open(os.path.join(app, "data", "notes.txt"), "w") as f:
    f.write("orders are exported nightly\n")
conn = sqlite3.connect(os.path.join(app, "orders.db"))
conn.execute("CREATE TABLE orders (id int, total real)")
conn.executemany("INSERT INTO orders VALUES (?, ?)", [(o["id"], o["total"]) for o in orders])
conn.commit()
conn.close()
PY

restic init -r "$restic_repo" -q
borg init -e repokey-blake2 "$borg_repo"

manifest; backup 10

echo "the 11th: exports moved to 03:00" >> "$data/notes.txt"
manifest; backup 11

manifest
for f in orders.json customers.csv; do
  head -c "$(stat -c %s "$data/$f")" /dev/urandom > "$data/$f.tmp" && mv "$data/$f.tmp" "$data/$f"
done
backup 12

for f in orders.json customers.csv notes.txt; do mv "$data/$f" "$data/$f.encrypted"; done
echo "Your files are encrypted. Pay to get them back." > "$src/app/DECRYPT_README.txt"
manifest; backup 13

backup 14
