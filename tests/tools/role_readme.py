"""Role READMEs from meta/argument_specs.yml, and the check that they (and defaults/main.yml) have not drifted.

    role_readme.py --write   regenerate the generated block of every roles/*/README.md
    role_readme.py --check   exit 1 when a README's generated block differs from the specs, or when a variable in
                             defaults/main.yml is not documented (or documented with another default)

Everything outside the markers in a README is hand-written and kept as is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- BEGIN GENERATED FROM meta/argument_specs.yml: do not edit; run `make docs` -->"
END = "<!-- END GENERATED -->"


def _text(value) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value or "")


def _cell(value) -> str:
    return _text(value).replace("|", "\\|").replace("\n", " ")


def _default(opt: dict) -> str:
    if "default" not in opt:
        return "*required*" if opt.get("required") else ""
    return "`" + json.dumps(opt["default"], sort_keys=True) + "`"


def _options_table(options: dict, depth: int = 0) -> list[str]:
    rows = []
    for name, opt in options.items():
        opt = opt or {}
        typ = opt.get("type", "str")
        if typ == "list" and opt.get("elements"):
            typ = f"list of {opt['elements']}"
        choices = f" Choices: {', '.join(f'`{c}`' for c in opt['choices'])}." if opt.get("choices") else ""
        prefix = "&nbsp;&nbsp;" * depth + ("↳ " if depth else "")
        rows.append(f"| {prefix}`{name}` | {typ} | {_default(opt)} | {_cell(opt.get('description'))}{choices} |")
        if opt.get("options"):
            rows.extend(_options_table(opt["options"], depth + 1))
    return rows


def render(role: str, specs: dict) -> str:
    lines = [BEGIN, ""]
    for entry, spec in specs.get("argument_specs", {}).items():
        title = "Variables" if entry == "main" else f"Entry point `{entry}` (`tasks_from: {entry}`)"
        lines += [f"## {title}", ""]
        if spec.get("short_description"):
            lines += [f"**{_text(spec['short_description'])}**", ""]
        for para in spec.get("description") or []:
            lines += [para, ""]
        options = spec.get("options") or {}
        if options:
            lines += ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
            lines += _options_table(options)
            lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def readme_for(role_dir: Path, specs: dict) -> str:
    path = role_dir / "README.md"
    block = render(role_dir.name, specs)
    if path.exists():
        current = path.read_text()
        if BEGIN in current and END in current:
            head, rest = current.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            return head + block.rstrip("\n") + tail
        return current.rstrip("\n") + "\n\n" + block
    main = specs.get("argument_specs", {}).get("main", {})
    intro = _text(main.get("short_description")) or f"The {role_dir.name} role."
    return (f"# restoreops.dr.{role_dir.name}\n\n{intro}.\n\n"
            f"Use it as `restoreops.dr.{role_dir.name}`; see also `docs/roles/{role_dir.name}.md`.\n\n" + block)


def default_drift(role_dir: Path, specs: dict) -> list[str]:
    problems = []
    defaults_file = role_dir / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    defaults = defaults or {}
    options: dict = {}
    for spec in specs.get("argument_specs", {}).values():
        options.update(spec.get("options") or {})
    for name, value in defaults.items():
        if not name.startswith(f"{role_dir.name}_"):
            problems.append(f"{role_dir.name}: default {name} is not prefixed with the role name")
        if name not in options:
            problems.append(f"{role_dir.name}: default {name} is not documented in meta/argument_specs.yml")
        elif "default" in options[name] and options[name]["default"] != value:
            documented = options[name]["default"]
            problems.append(f"{role_dir.name}: {name} defaults to {value!r} but the specs say {documented!r}")
    for name, opt in options.items():
        if "default" in (opt or {}) and name not in defaults:
            problems.append(f"{role_dir.name}: {name} has a documented default but is missing from defaults/main.yml")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    parser.add_argument("roles", nargs="*", help="role names (default: all)")
    args = parser.parse_args()
    problems = []
    role_dirs = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir())
    if args.roles:
        role_dirs = [d for d in role_dirs if d.name in args.roles]
    for role_dir in role_dirs:
        spec_file = role_dir / "meta" / "argument_specs.yml"
        if not spec_file.exists():
            problems.append(f"{role_dir.name}: meta/argument_specs.yml is missing")
            continue
        specs = yaml.safe_load(spec_file.read_text()) or {}
        wanted = readme_for(role_dir, specs)
        readme = role_dir / "README.md"
        if args.write:
            if not readme.exists() or readme.read_text() != wanted:
                readme.write_text(wanted)
                print(f"wrote {readme.relative_to(ROOT)}")
        elif not readme.exists() or readme.read_text() != wanted:
            problems.append(f"{role_dir.name}: README.md differs from meta/argument_specs.yml (run `make docs`)")
        problems.extend(default_drift(role_dir, specs))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
