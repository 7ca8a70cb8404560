# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Accounts by name on a replacement host, and restored files given back to them: ``restoreops.dr.restore_accounts``.

borg and restic restore owners by number. The account map recorded at backup time (``accounts.json`` of
``restoreops.dr.backup_context``) says which name each number had; on the new host a user is recreated by name
(keeping the recorded number when it is free there) and every restored file owned by the old number is given to the
new one, in one walk that applies the whole map at once (so 1500 -> 1501 and 1501 -> 1502 never chain).
The plan (:func:`plan_accounts`) is pure; the walk takes its stat and chown functions as arguments.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError


@dataclass
class AccountPlan:
    name: str
    group: str
    old_uid: int
    old_gid: int
    new_uid: Optional[int]  # None: the user is still to be created with a number the system picks
    new_gid: Optional[int]
    create_user: bool
    create_group: bool
    uid_for_create: Optional[int]  # the recorded number when it is free here
    gid_for_create: Optional[int]
    home: str = ""
    shell: str = ""
    system: bool = False


def load_json(path: str, what: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"The {what} {path} is not there (was the context restored?).") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"The {what} {path} cannot be read: {exc}.") from None
    if not isinstance(data, dict):
        raise InputError(f"The {what} {path} is not a JSON object.")
    return data


def plan_accounts(recorded: Mapping[str, Any], users: Sequence[str], passwd: Mapping[str, Tuple[int, int]],
                  groups: Mapping[str, int]) -> List[AccountPlan]:
    """What to create and how numbers move (pure).

    ``passwd`` maps the target's user names to (uid, gid), ``groups`` its group names to gid.
    """
    rec_users = recorded.get("users") or {}
    rec_groups = recorded.get("groups") or {}
    unknown = [u for u in users if u not in rec_users]
    if unknown:
        raise InputError(f"Users not in the account map recorded at backup time: {', '.join(unknown)}.")
    taken_uids = {uid for uid, _gid in passwd.values()}
    taken_gids = set(groups.values())
    plans = []
    planned_gids: Dict[str, Optional[int]] = {}
    for name in users:
        rec = rec_users[name]
        group = str(rec.get("group") or name)
        old_uid = int(rec["uid"])
        old_gid = int((rec_groups.get(group) or {}).get("gid", rec.get("gid")))
        create_group = group not in groups and group not in planned_gids
        if group in groups:
            new_gid: Optional[int] = groups[group]
            gid_for_create = None
        elif group in planned_gids:
            new_gid = planned_gids[group]
            gid_for_create = None
        else:
            gid_for_create = old_gid if old_gid not in taken_gids else None
            new_gid = gid_for_create
            planned_gids[group] = new_gid
            if gid_for_create is not None:
                taken_gids.add(gid_for_create)
        if name in passwd:
            new_uid: Optional[int] = passwd[name][0]
            create_user, uid_for_create = False, None
        else:
            create_user = True
            uid_for_create = old_uid if old_uid not in taken_uids else None
            new_uid = uid_for_create
            if uid_for_create is not None:
                taken_uids.add(uid_for_create)
        plans.append(AccountPlan(name=name, group=group, old_uid=old_uid, old_gid=old_gid, new_uid=new_uid,
                                 new_gid=new_gid, create_user=create_user, create_group=create_group,
                                 uid_for_create=uid_for_create, gid_for_create=gid_for_create,
                                 home=str(rec.get("home") or "/nonexistent"),
                                 shell=str(rec.get("shell") or "/usr/sbin/nologin"),
                                 system=bool(rec.get("system"))))
    return plans


def id_maps(plans: Iterable[AccountPlan]) -> Tuple[Dict[int, int], Dict[int, int]]:
    """old -> new numbers that differ (users whose new number is known)."""
    uids = {p.old_uid: p.new_uid for p in plans if p.new_uid is not None and p.new_uid != p.old_uid}
    gids = {p.old_gid: p.new_gid for p in plans if p.new_gid is not None and p.new_gid != p.old_gid}
    return uids, gids


CAPABILITY = "security.capability"


def _capability(path: str) -> Optional[bytes]:
    try:
        return os.getxattr(path, CAPABILITY, follow_symlinks=False)
    except OSError:  # none (ENODATA), or a file system without extended attributes
        return None


def keep_privileges(path: str, st: os.stat_result, change: Callable[[], None]) -> None:
    """Run ``change`` (a chown) and give a regular file back what the kernel takes from it on a change of owner: the
    setuid and setgid bits and its file capability (``security.capability``), as it had them before."""
    if not stat.S_ISREG(st.st_mode):
        change()
        return
    capability = _capability(path)
    change()
    if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    if capability is not None:
        os.setxattr(path, CAPABILITY, capability, follow_symlinks=False)


def reown(paths: Sequence[str], uid_map: Mapping[int, int], gid_map: Mapping[int, int], *, apply: bool,
          lstat: Callable[[str], os.stat_result] = os.lstat,
          lchown: Callable[[str, int, int], None] = os.lchown) -> Dict[str, int]:
    """Walk ``paths`` (one file system each, links not followed) and map owners; returns counts. A regular file keeps
    its setuid/setgid bits and its file capability across the change (:func:`keep_privileges`)."""
    counts = {"files": 0, "uid": 0, "gid": 0}
    if not uid_map and not gid_map:
        return counts

    def visit(path: str, st: os.stat_result) -> None:
        uid = uid_map.get(st.st_uid, st.st_uid)
        gid = gid_map.get(st.st_gid, st.st_gid)
        if uid == st.st_uid and gid == st.st_gid:
            return
        counts["files"] += 1
        counts["uid"] += uid != st.st_uid
        counts["gid"] += gid != st.st_gid
        if apply:
            keep_privileges(path, st, lambda: lchown(path, uid, gid))

    for top in paths:
        try:
            root_st = lstat(top)
        except FileNotFoundError:
            continue
        visit(top, root_st)
        if not stat.S_ISDIR(root_st.st_mode):
            continue
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                names = os.listdir(directory)
            except OSError as exc:
                raise RestoreOpsError(f"Cannot read {directory} to give its files back to their owners: "
                                      f"{exc.strerror}.") from None
            for name in names:
                path = os.path.join(directory, name)
                st = lstat(path)
                visit(path, st)
                if stat.S_ISDIR(st.st_mode) and st.st_dev == root_st.st_dev:
                    stack.append(path)
    return counts


def current_accounts() -> Tuple[Dict[str, Tuple[int, int]], Dict[str, int]]:
    return ({u.pw_name: (u.pw_uid, u.pw_gid) for u in pwd.getpwall()}, {g.gr_name: g.gr_gid for g in grp.getgrall()})


def create(module: Any, plan: AccountPlan) -> None:
    if plan.create_group:
        argv = [module.get_bin_path("groupadd", required=True)]
        if plan.gid_for_create is not None:
            argv += ["--gid", str(plan.gid_for_create)]
        if plan.system:
            argv.append("--system")
        _run(module, [*argv, plan.group], f"groupadd {plan.group}")
    if plan.create_user:
        argv = [module.get_bin_path("useradd", required=True), "--no-create-home", "--gid", plan.group,
                "--home-dir", plan.home, "--shell", plan.shell]
        if plan.uid_for_create is not None:
            argv += ["--uid", str(plan.uid_for_create)]
        if plan.system:
            argv.append("--system")
        _run(module, [*argv, plan.name], f"useradd {plan.name}")


def _run(module: Any, argv: List[str], what: str) -> None:
    rc, out, err = module.run_command(argv)
    if rc != 0:
        raise RestoreOpsError(f"{what} failed (rc={rc}): {(err or out).strip()}", cmd=argv, rc=rc)


def describe(plans: Sequence[AccountPlan]) -> str:
    parts = []
    for p in plans:
        new = "?" if p.new_uid is None else str(p.new_uid)
        parts.append(f"{p.name} uid {p.old_uid}" + (" (kept)" if p.new_uid == p.old_uid else f" -> {new}")
                     + (" (created)" if p.create_user else ""))
    return "; ".join(parts) or "no users to recreate"


def main(module: Any) -> Dict[str, Any]:
    params = module.params
    context = params["context_dir"]
    if not os.path.isabs(context):
        raise InputError(f"context_dir must be an absolute path, got {context!r}.")
    for path in params.get("paths") or []:
        if not os.path.isabs(path) or os.path.normpath(path) == "/":
            raise InputError(f"paths must be absolute and not / (only restored data is re-owned), got {path!r}.")
    recorded = load_json(os.path.join(context, "accounts.json"), "account map")
    host_file = os.path.join(context, "host.json")
    lost_host = load_json(host_file, "host record") if os.path.exists(host_file) else {}
    users = list(params.get("users") or [])
    passwd, groups = current_accounts()
    plans = plan_accounts(recorded, users, passwd, groups)
    to_create = [p for p in plans if p.create_user or p.create_group]
    check_mode = bool(module.check_mode)
    if to_create and not check_mode:
        for plan in to_create:
            create(module, plan)
        made_users = {p.name for p in to_create if p.create_user}
        made_groups = {p.group for p in to_create if p.create_group}
        passwd, groups = current_accounts()
        plans = plan_accounts(recorded, users, passwd, groups)
        for plan in plans:  # report what this run created, now that the numbers are known
            plan.create_user, plan.create_group = plan.name in made_users, plan.group in made_groups
    uid_map, gid_map = id_maps(plans)
    reowned = reown(params.get("paths") or [], uid_map, gid_map, apply=not check_mode)
    changed = bool(to_create) or reowned["files"] > 0
    checks = [{"phase": "context", "name": "account map", "ok": True, "detail": describe(plans)}]
    if params.get("paths"):
        checks.append({"phase": "ownership", "name": "ownership by name", "ok": True,
                       "detail": f"{reowned['uid']} files re-owned by UID, {reowned['gid']} by GID"})
    result: Dict[str, Any] = {
        "changed": changed,
        "users": [asdict(p) for p in plans],
        "uid_map": {str(k): v for k, v in uid_map.items()},
        "gid_map": {str(k): v for k, v in gid_map.items()},
        "reowned": reowned,
        "lost_host": lost_host,
        "checks": checks,
    }
    if module._diff and changed:
        result["diff"] = {
            "before": "".join(f"{p.name}: {'absent' if p.create_user else 'present'}\n" for p in plans),
            "after": "".join(f"{p.name}: present, uid {p.new_uid if p.new_uid is not None else '(new)'}\n"
                             for p in plans) + f"files re-owned: {reowned['files']}\n",
        }
    return result
