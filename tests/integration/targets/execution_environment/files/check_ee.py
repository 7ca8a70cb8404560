#!/usr/bin/env python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution-environment metadata, checked with ansible-builder; then an EE image built here and a job run in it.

Usage: check_ee.py WORKDIR COLLECTION_ROOT

1. The collection is built (ansible-galaxy collection build) and installed; the tarball must carry
   meta/execution-environment.yml, meta/ee-requirements.txt and meta/ee-bindep.txt (not in build_ignore).
2. ``ansible-builder introspect`` on the installed collection must list exactly the controller-side requirements of
   meta/ee-requirements.txt and meta/ee-bindep.txt, and none of the development toolchain (requirements.txt).
3. ``ansible-builder create`` on docs/ee/execution-environment.yml (the example for users) must give a build context
   that installs the collections of docs/ee/requirements.yml and runs the introspection and assembly.
4. With EE_IMAGE_TEST=1 (not in make test: minutes of downloads): the same definition, pointed at a local Debian
   base image (EE_BASE_IMAGE, default the lab's restoreops-dr/base:current) with the adjustments Debian needs
   (docs/execution-environment.md), is built with docker; the image must hold ansible-core, ansible-runner,
   restoreops.dr and its Python requirements. Then the policy audit runs inside it the way AWX runs a job:
   ansible-runner with --process-isolation starts the EE with the private data directory mounted, the SSH key of a
   machine credential in env/ssh_key, and reaches a managed host (a container with borg, restic and sshd on
   127.0.0.171:22171) over SSH. The report goes to a directory mounted into the EE and outlives it; the verdict and
   the table arrive in the job events; no passphrase is in any artifact. Without audit_output_dir the job is
   refused before any probe.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile

import yaml

WORK, ROOT = sys.argv[1], os.path.abspath(sys.argv[2])
FAILURES: list = []
EE_IMAGE = "restoreops-dr/ee-test:current"
TARGET_IMAGE = "restoreops-dr/ee-test-target"
TARGET_NAME = "rdr-ee-target"
TARGET_ADDR, TARGET_PORT = "127.0.0.171", 22171
CONTROLLER_PYTHON = {"dnspython", "psycopg[binary]", "boto3", "jmespath"}
DEV_TOOLCHAIN = ("molecule", "ansible-lint", "pytest", "moto", "ruff", "antsibull", "docker", "ansible-builder")


def sh(*argv, check=True, **kwargs):
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:5])} failed rc={proc.returncode}:\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return proc


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name, flush=True)
    if not condition:
        print(f"     {str(detail)[:3000]}")
        FAILURES.append(name)


def path(*parts):
    return os.path.join(WORK, *parts)


def requirement_name(line: str) -> str:
    return line.split("#", 1)[0].strip().split(">", 1)[0].split("=", 1)[0].split("<", 1)[0].strip().lower()


def read_lines(rel: str) -> list[str]:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


# --- 1. the tarball and the installed collection --------------------------------------------------------------
def build_and_install() -> str:
    os.makedirs(path("dist"))
    sh("ansible-galaxy", "collection", "build", "--output-path", path("dist"), ROOT)
    tarball = glob.glob(path("dist", "restoreops-dr-*.tar.gz"))[0]
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    wanted = {"meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/ee-bindep.txt"}
    check("the collection tarball carries the EE metadata (not in build_ignore)", wanted <= names,
          sorted(wanted - names))
    sh("ansible-galaxy", "collection", "install", "--force", "-p", path("installed"), tarball)
    return tarball


# --- 2. introspection --------------------------------------------------------------------------------------------
def check_introspect() -> None:
    os.makedirs(path("introspect"))
    proc = sh("ansible-builder", "introspect", "--sanitize", path("installed"),
              "--write-pip", path("introspect", "requirements.txt"),
              "--write-bindep", path("introspect", "bindep.txt"))
    # the YAML document, then what it wrote where (after an empty line)
    doc = yaml.safe_load(proc.stdout.split("---", 1)[1].split("\n\n", 1)[0]) if "---" in proc.stdout else None
    check("introspect prints YAML with python and system lists", isinstance(doc, dict) and
          isinstance(doc.get("python"), list) and isinstance(doc.get("system"), list), proc.stdout)
    if not isinstance(doc, dict):
        return
    python = {requirement_name(line) for line in doc["python"]}
    check("introspect: the controller-side Python requirements, from restoreops.dr",
          python == CONTROLLER_PYTHON and all("from collection restoreops.dr" in line for line in doc["python"]),
          doc["python"])
    check("introspect: none of the development toolchain (requirements.txt) leaks into the EE",
          not any(requirement_name(line).startswith(DEV_TOOLCHAIN) for line in doc["python"]), doc["python"])
    declared = {requirement_name(line) for line in read_lines("meta/ee-requirements.txt")}
    check("introspect lists every entry of meta/ee-requirements.txt, no more", python == declared,
          (python, declared))
    system = sorted(line.split("#", 1)[0].strip() for line in doc["system"])
    check("introspect: the system packages of meta/ee-bindep.txt, with their platforms",
          system == sorted(read_lines("meta/ee-bindep.txt")) == ["openssh-client [platform:dpkg]",
                                                                 "openssh-clients [platform:rpm]"], system)
    with open(path("introspect", "requirements.txt"), encoding="utf-8") as handle:
        written = {requirement_name(line) for line in handle if line.strip()}
    check("introspect --write-pip writes the same requirements file the builder stage installs",
          written == CONTROLLER_PYTHON, written)


# --- 3. create from the documented example ------------------------------------------------------------------------
def containerfile(context: str) -> str:
    for name in ("Containerfile", "Dockerfile"):
        if os.path.exists(os.path.join(context, name)):
            with open(os.path.join(context, name), encoding="utf-8") as handle:
                return handle.read()
    return ""


def check_create_docs_example() -> dict:
    src = os.path.join(ROOT, "docs", "ee")
    with open(os.path.join(src, "execution-environment.yml"), encoding="utf-8") as handle:
        definition = yaml.safe_load(handle)
    check("docs/ee/execution-environment.yml is schema version 3", definition.get("version") == 3, definition)
    shutil.copytree(src, path("docs-ee"))
    context = path("docs-ee", "context")
    sh("ansible-builder", "create", "-f", path("docs-ee", "execution-environment.yml"), "-c", context, "-v", "1")
    text = containerfile(context)
    with open(os.path.join(context, "_build", "requirements.yml"), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    names = [c["name"] for c in galaxy.get("collections", [])]
    called = {"community.general", "community.postgresql", "ansible.posix", "community.crypto"}
    check("create: the build context installs restoreops.dr and the collections its roles call",
          names[:1] == ["restoreops.dr"] and called <= set(names), names)
    steps = ("FROM $EE_BASE_IMAGE AS base", "ansible-galaxy collection install", "introspect.py introspect",
             "/output/scripts/assemble", "/output/scripts/install-from-bindep", "/output/scripts/check_ansible",
             "LABEL ansible-execution-environment=true")
    check("create: the Containerfile installs the collections, introspects them and assembles their requirements",
          all(step in text for step in steps), [s for s in steps if s not in text])
    check("create: ansible-core and ansible-runner as the example pins them",
          'ANSIBLE_INSTALL_REFS="ansible-core>=2.19.0,<2.20.0 ansible-runner>=2.4"' in text,
          [line for line in text.splitlines() if "INSTALL_REFS" in line])
    check("create: the scripts ansible-builder runs in the image are in the context",
          all(os.path.exists(os.path.join(context, "_build", "scripts", s)) for s in
              ("assemble", "install-from-bindep", "introspect.py", "check_ansible", "entrypoint")),
          os.listdir(os.path.join(context, "_build", "scripts")))
    return definition


# --- 4. an image built here, and a job in it ----------------------------------------------------------------------
def pinned(name: str) -> str:
    for line in read_lines("requirements.txt"):
        if requirement_name(line) == name:
            return line.split("#", 1)[0].strip()
    raise SystemExit(f"{name} is not pinned in requirements.txt")


def pip_ca_bundle() -> str | None:
    """The CA bundle this machine's pip uses (read from its configuration at run time), for pip inside the build."""
    if os.environ.get("PIP_CERT"):
        return os.environ["PIP_CERT"]
    out = sh(sys.executable, "-m", "pip", "config", "list", check=False).stdout
    for line in out.splitlines():
        key, _sep, value = line.partition("=")
        if key.endswith(".cert"):
            return value.strip().strip("'\"")
    return None


def local_definition(docs_definition: dict, tarball: str, base_image: str) -> str:
    """The documented definition, adjusted for a local Debian base image (docs/execution-environment.md)."""
    definition = json.loads(json.dumps(docs_definition))
    definition["images"] = {"base_image": {"name": base_image}}
    deps = definition["dependencies"]
    deps["ansible_core"] = {"package_pip": pinned("ansible-core")}
    deps["ansible_runner"] = {"package_pip": pinned("ansible-runner")}
    # Debian: pip from the package (its python3 refuses ensurepip), apt-get as the package manager.
    deps["python_interpreter"] = {"package_system": "python3 python3-pip", "python_path": "/usr/bin/python3"}
    # Galaxy is not reachable here: the collection under test comes as its tarball.
    deps["galaxy"] = {"collections": [{"name": f"/build/collections/{os.path.basename(tarball)}", "type": "file"}]}
    definition["options"] = {"package_manager_path": "/usr/bin/apt-get", "skip_pip_install": True,
                             "tags": [EE_IMAGE]}
    files = [{"src": tarball, "dest": "collections"}]
    prepend = ["RUN echo 'APT::Install-Recommends \"false\";' > /etc/apt/apt.conf.d/90-no-recommends",
               "RUN apt-get update"]
    bundle = pip_ca_bundle()
    if bundle and os.path.exists(bundle):
        files.append({"src": bundle, "dest": "certs"})
        prepend += ["COPY _build/certs/ /etc/build-ca/", f"ENV PIP_CERT=/etc/build-ca/{os.path.basename(bundle)}"]
    definition["additional_build_files"] = files
    definition["additional_build_steps"] = {"prepend_base": prepend}
    os.makedirs(path("local-ee"))
    target = path("local-ee", "execution-environment.yml")
    with open(target, "w", encoding="utf-8") as handle:
        yaml.safe_dump(definition, handle, sort_keys=False)
    return target


def docker_ready() -> bool:
    return shutil.which("docker") is not None and sh("docker", "info", check=False).returncode == 0


def build_images(docs_definition: dict, tarball: str) -> bool:
    base = os.environ.get("EE_BASE_IMAGE", "restoreops-dr/base:current")
    if sh("docker", "image", "inspect", base, check=False).returncode != 0:
        check(f"the base image {base} exists (tests/lab/lab images builds it; make integration runs in the lab)",
              False, base)
        return False
    definition = local_definition(docs_definition, tarball, base)
    context = path("local-ee", "context")
    sh("ansible-builder", "create", "-f", definition, "-c", context, "-v", "1")
    proc = sh("docker", "build", "--network", "host", "-t", EE_IMAGE, context, check=False)
    with open(path("ee-build.log"), "w", encoding="utf-8") as handle:
        handle.write(proc.stdout + proc.stderr)
    check("docker build of the EE from a local Debian base image", proc.returncode == 0,
          (proc.stdout + proc.stderr)[-3000:])
    if proc.returncode != 0:
        return False
    probe = sh("docker", "run", "--rm", "--network", "none", EE_IMAGE, "bash", "-c",
               "ansible --version | head -1; ansible-runner --version; "
               "ansible-galaxy collection list restoreops.dr 2>/dev/null | grep restoreops.dr; "
               "python3 -c 'import dns, psycopg, boto3, jmespath; print(\"imports ok\")'; command -v ssh ssh-agent; "
               "id -u; pwd", check=False)
    out = probe.stdout
    check("the EE holds ansible-core, ansible-runner, restoreops.dr, its Python requirements and the SSH client",
          probe.returncode == 0 and pinned("ansible-core").split("==")[1] in out
          and pinned("ansible-runner").split("==")[1] in out and "restoreops.dr" in out and "imports ok" in out
          and "/usr/bin/ssh-agent" in out, out + probe.stderr)
    # the managed host, built once per recipe
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "target.Dockerfile"), "rb") as handle:
        base_id = sh("docker", "image", "inspect", "-f", "{{.Id}}", base).stdout
        recipe = hashlib.sha256(handle.read() + base.encode() + base_id.encode()).hexdigest()[:12]
    tag = f"{TARGET_IMAGE}:{recipe}"
    if sh("docker", "image", "inspect", tag, check=False).returncode != 0:
        sh("docker", "build", "--network", "host", "--build-arg", f"BASE={base}", "-t", tag, "-f",
           os.path.join(os.path.dirname(os.path.abspath(__file__)), "target.Dockerfile"),
           os.path.dirname(os.path.abspath(__file__)))
    os.environ["EE_TARGET_IMAGE"] = tag
    return True


def start_target() -> dict:
    listening = sh("ss", "-ltnH", check=False).stdout
    if f"{TARGET_ADDR}:{TARGET_PORT}" in listening:
        raise SystemExit(f"{TARGET_ADDR}:{TARGET_PORT} is already in use")
    ssh_dir = path("target-ssh")
    os.makedirs(ssh_dir, mode=0o700)
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ee-test", "-f", path("id_ee"))
    shutil.copy(path("id_ee.pub"), os.path.join(ssh_dir, "authorized_keys"))
    os.chmod(os.path.join(ssh_dir, "authorized_keys"), 0o600)
    sh("docker", "rm", "-f", TARGET_NAME, check=False)
    sh("docker", "run", "-d", "--name", TARGET_NAME, "--hostname", "ee-target", "--network", "host",
       "-v", f"{ssh_dir}:/root/.ssh:ro", os.environ["EE_TARGET_IMAGE"], "/usr/sbin/sshd", "-D", "-e",
       "-o", f"ListenAddress={TARGET_ADDR}:{TARGET_PORT}", "-o", "PasswordAuthentication=no",
       "-o", "PermitRootLogin=prohibit-password")
    # the managed host's backups: an append-only borg repository with its key escrowed, a restic repository with
    # retention, the passphrase files (0600) and the timer link, made with the host's own tools
    setup = r"""
set -eu
mkdir -p /srv/app /etc/restoreops /srv/escrow /etc/systemd/system/timers.target.wants
echo "listen 127.0.0.171" > /srv/app/app.conf
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/restoreops/borg.pass
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/restoreops/restic.pass
chmod 0600 /etc/restoreops/borg.pass /etc/restoreops/restic.pass
export BORG_PASSCOMMAND="cat /etc/restoreops/borg.pass" RESTIC_PASSWORD_FILE=/etc/restoreops/restic.pass
borg init --encryption=repokey --append-only /srv/borg
borg create /srv/borg::n1 /srv/app
borg key export /srv/borg /srv/escrow/borg.key && chmod 0600 /srv/escrow/borg.key
restic init -q --repo /srv/restic
restic backup -q --repo /srv/restic /srv/app
printf '[Timer]\nOnCalendar=daily\n' > /etc/systemd/system/timers.target.wants/restic-forget.timer
"""
    sh("docker", "exec", TARGET_NAME, "bash", "-c", setup)
    secrets = [sh("docker", "exec", TARGET_NAME, "cat", f"/etc/restoreops/{n}.pass").stdout for n in ("borg", "restic")]
    for _attempt in range(50):
        if f"{TARGET_ADDR}:{TARGET_PORT}" in sh("ss", "-ltnH", check=False).stdout:
            break
        sh("sleep", "0.2")
    return {"secrets": secrets}


def run_in_ee(target: dict) -> None:
    pdd = path("runner")
    for sub in ("inventory", "env", "project"):
        os.makedirs(os.path.join(pdd, sub))
    host = {"ansible_host": TARGET_ADDR, "ansible_port": TARGET_PORT, "ansible_user": "root",
            "ansible_python_interpreter": "/usr/bin/python3",
            "audit_borg_repositories": [{"name": "borg", "repo": "/srv/borg",
                                         "passphrase_file": "/etc/restoreops/borg.pass",
                                         "key_export": "/srv/escrow/borg.key"}],
            "audit_restic_repositories": [{"name": "restic", "repository": "/srv/restic",
                                           "password_file": "/etc/restoreops/restic.pass",
                                           "retention": {"keep_daily": 7}, "prune": True,
                                           "retention_timer": "restic-forget.timer"}],
            "audit_secret_files": ["/etc/restoreops/borg.pass", "/etc/restoreops/restic.pass"],
            "audit_secret_scan_paths": ["/etc/systemd/system"]}
    with open(os.path.join(pdd, "inventory", "hosts.json"), "w", encoding="utf-8") as handle:
        json.dump({"all": {"hosts": {"ee-target": host}}}, handle)
    with open(os.path.join(pdd, "project", "audit.yml"), "w", encoding="utf-8") as handle:
        handle.write("---\n- name: Backup policy audit\n"
                     "  ansible.builtin.import_playbook: restoreops.dr.audit_policy\n")
    with open(os.path.join(pdd, "env", "cmdline"), "w", encoding="utf-8") as handle:
        handle.write("--check")
    shutil.copy(path("id_ee"), os.path.join(pdd, "env", "ssh_key"))  # a machine credential, as AWX passes it
    reports = path("reports")  # a persistent directory mounted into the EE (AWX: paths exposed to jobs)
    os.makedirs(reports)

    def runner(ident: str, extravars: dict):
        with open(os.path.join(pdd, "env", "extravars"), "w", encoding="utf-8") as handle:
            json.dump(extravars, handle)
        proc = sh("ansible-runner", "run", pdd, "-p", "audit.yml", "--ident", ident, "-q",
                  "--process-isolation", "--process-isolation-executable", "docker",
                  "--container-image", EE_IMAGE, "--container-option=--network=host",
                  f"--container-volume-mount={reports}:/reports", check=False)
        events = []
        folder = os.path.join(pdd, "artifacts", ident, "job_events")
        for name in sorted(os.listdir(folder), key=lambda n: int(n.split("-", 1)[0])) if os.path.isdir(folder) else []:
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                events.append(json.load(handle))
        return proc, events

    proc, events = runner("ee-audit", {"audit_output_dir": "/reports"})
    stdout = "".join(e.get("stdout") or "" for e in events)
    check("ansible-runner ran the audit in the EE over SSH: PASS", proc.returncode == 0
          and "No policy violation" in stdout, (proc.stdout + proc.stderr)[-2000:] + stdout[-2000:])
    table = [e for e in events if e.get("event") == "runner_on_ok"
             and e["event_data"].get("task", "").startswith("Print the violations per host")]
    lines = table[0]["event_data"]["res"]["msg"] if table else []
    check("the table arrives in the job events from inside the EE",
          any(line.startswith("ee-target ") and " PASS " in line for line in lines), lines)
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    artifact = stats[-1]["event_data"].get("artifact_data", {}).get("restoreops_audit") if stats else None
    check("the verdict is in the job's artifacts", artifact is not None and artifact["ok"] is True
          and artifact["report_dir"] == "/reports", artifact)
    report = os.path.join(reports, "audit.json")
    doc = json.load(open(report, encoding="utf-8")) if os.path.exists(report) else None  # noqa: SIM115
    check("the report outlives the EE: written to the mounted directory", doc is not None and doc["ok"]
          and list(doc["hosts"]) == ["ee-target"] and os.path.exists(os.path.join(reports, "junit.xml")), doc)
    leaks = []
    for top, _dirs, files in os.walk(os.path.join(pdd, "artifacts")):
        for name in files:
            with open(os.path.join(top, name), "rb") as handle:
                data = handle.read()
            leaks += [os.path.join(top, name) for s in target["secrets"] if s.encode() in data]
    check("no passphrase of the managed host in any artifact (job events, stdout, command, env.list)",
          leaks == [], leaks)

    proc, events = runner("ee-no-dir", {})
    refused = [e for e in events if e.get("event") == "runner_on_failed"
               and e["event_data"].get("task", "").startswith("Refuse a report directory")]
    probes = [e for e in events if e.get("event_data", {}).get("task", "").startswith("Read the backups")
              and e.get("event") in ("runner_on_ok", "runner_on_failed")]
    check("in the EE without audit_output_dir: refused before any probe, naming the variable",
          proc.returncode != 0 and len(refused) == 1 and not probes
          and "audit_output_dir" in refused[0]["event_data"]["res"].get("msg", ""),
          [e["event_data"].get("res", {}).get("msg") for e in refused] or proc.stdout[-1500:])


def main() -> int:
    image_test = os.environ.get("EE_IMAGE_TEST") == "1"
    tarball = build_and_install()
    check_introspect()
    docs_definition = check_create_docs_example()
    if not image_test:
        print("SKIPPED the EE image build and the job in it: set EE_IMAGE_TEST=1 (docs/execution-environment.md; "
              "it builds an image from PyPI and the Debian mirror, minutes that make test does not spend)")
    elif not docker_ready():
        check("docker runs (EE_IMAGE_TEST=1 builds the EE image)", False, "docker info failed")
    elif build_images(docs_definition, tarball):
        try:
            run_in_ee(start_target())
        finally:
            sh("docker", "rm", "-f", TARGET_NAME, check=False)
    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        return 1
    print("execution_environment: metadata introspected, build context created"
          + (", image built and the audit run in it" if image_test else " (no image: EE_IMAGE_TEST is not 1)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
