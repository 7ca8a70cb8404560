#!/usr/bin/env bash
# Build the repositories, devices and escrowed copies the key_escrow_check tests read. $1 is the scratch directory;
# $1/escrow is already a tmpfs mount (another filesystem than the repositories), $1/escrow/pass a second one (the
# passphrases' own filesystem). Secrets reach the tools through
# the environment and files, as in production.
set -euo pipefail
S="$1"
umask 077
PASS="escrow-test-passphrase"
export BORG_BASE_DIR="$S/base" BORG_PASSPHRASE="$PASS" BORG_RELOCATED_REPO_ACCESS_IS_OK=no
mkdir -p "$S/repos" "$S/base" "$S/src" "$S/onrepo" "$S/escrow/keys" "$S/escrow/pass" "$S/escrow/shared"
head -c 262144 /dev/urandom > "$S/src/data.bin"
printf '%s\n' "$PASS" > "$S/escrow/pass/borg.pass"
printf '%s\n' "not-the-passphrase" > "$S/escrow/pass/wrong.pass"

borg_repo() {  # name mode
    borg init --encryption "$2" "$S/repos/$1" 2>/dev/null
    borg create "$S/repos/$1::first" "$S/src"
    borg key export "$S/repos/$1" "$S/escrow/keys/$1.key"
}
borg_repo borg-rk repokey
borg_repo borg-kf keyfile
borg_repo borg-other repokey
borg_repo borg-stale repokey
borg_repo borg-kf-stale keyfile
BORG_NEW_PASSPHRASE="changed-after-export" borg key change-passphrase "$S/repos/borg-stale"
BORG_NEW_PASSPHRASE="changed-after-export" borg key change-passphrase "$S/repos/borg-kf-stale"

restic_repo() {  # name password-file
    restic init -q -r "$S/repos/$1" --password-file "$2"
    restic backup -q -r "$S/repos/$1" --password-file "$2" --no-cache "$S/src"
}
printf 'restic-escrowed-password\n' > "$S/escrow/keys/restic.pass"
printf 'another-repositorys-password\n' > "$S/escrow/keys/restic-other.pass"
printf 'rotated-away-password\n' > "$S/escrow/keys/restic-rot.pass"
printf 'the-new-password\n' > "$S/new.pass"
restic_repo restic "$S/escrow/keys/restic.pass"
restic_repo restic-other "$S/escrow/keys/restic-other.pass"
restic_repo restic-rot "$S/escrow/keys/restic-rot.pass"
# Rotation: add the new key, then remove the old one while opened with the new password.
restic -q -r "$S/repos/restic-rot" --password-file "$S/escrow/keys/restic-rot.pass" --no-cache \
    key add --new-password-file "$S/new.pass"
OLD_ID="$(restic -r "$S/repos/restic-rot" --password-file "$S/new.pass" --no-cache key list --json |
    python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if not k["current"]][0])')"
restic -q -r "$S/repos/restic-rot" --password-file "$S/new.pass" --no-cache key remove "$OLD_ID"

# LUKS containers on plain files (cryptsetup --test-passphrase needs no loop device); fast PBKDF for tests.
luks() {  # name
    truncate -s 16M "$S/repos/$1.img"
    head -c 64 /dev/urandom > "$S/escrow/keys/$1.key"
    cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
        --key-file "$S/escrow/keys/$1.key" "$S/repos/$1.img"
}
luks luks
luks luks-stale
head -c 64 /dev/urandom > "$S/luks-new.key"
cryptsetup luksChangeKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file "$S/escrow/keys/luks-stale.key" "$S/repos/luks-stale.img" "$S/luks-new.key"

# An exported KMS/Vault key, checked by digest.
printf '{"kms_key_id": "restoreops-test", "material": "%s"}\n' "$(head -c 32 /dev/urandom | base64)" \
    > "$S/escrow/keys/kms.json"
sha256sum "$S/escrow/keys/kms.json" | cut -d' ' -f1 > "$S/kms.sha256"

# Escrows that are wrong in one way each.
install -m 0644 "$S/escrow/keys/borg-rk.key" "$S/escrow/keys/borg-rk-0644.key"
install -m 0600 "$S/escrow/keys/borg-rk.key" "$S/escrow/shared/borg-rk.key"
install -m 0600 "$S/escrow/pass/borg.pass" "$S/escrow/shared/borg.pass"
install -m 0600 "$S/escrow/keys/borg-rk.key" "$S/onrepo/borg-rk.key"
